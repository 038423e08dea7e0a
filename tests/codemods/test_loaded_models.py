"""Models whose frozen parameters the code does not show (s41): a model loaded whole
(``torch.load``, ``torch.jit.load``, ``torch.hub.load``, ``pickle.load``: the map's
``parameters.loaded_models``) carries the requires_grad flags it was saved with, and
torchvision's detection builders freeze their backbone's first blocks by default (the map's
``freezing_calls``). torch skips a frozen parameter (no update, no weight decay), the
translation updated every leaf: both escape now, in both targets. The twins (a model built by a
class, a state_dict loaded into it, a loaded tensor that is no model) still translate."""

from __future__ import annotations

import pytest

from tests.support import converts_in_both_targets, escapes_in_both_targets

HEAD = "import pickle\n\nimport torch\nimport torchvision\n\n\n"
NET = "class Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = torch.nn.Linear(4, 2)\n\n    def forward(self, x):\n        return self.fc(x)\n\n\n"
ADAMW = "optimizer = torch.optim.AdamW({params}, lr=1e-3, weight_decay=0.1)\n"

LOADED = {
    "torch_load": "model = torch.load('model.pt')\n" + ADAMW.format(params="model.parameters()"),
    "to_device": "model = torch.load('m.pt', weights_only=False).to('cpu').train()\n"
    + ADAMW.format(params="model.parameters()"),
    "jit_load": "model = torch.jit.load('m.pt')\n" + ADAMW.format(params="model.parameters()"),
    "hub_load": "model = torch.hub.load('pytorch/vision', 'resnet18')\n"
    + ADAMW.format(params="model.parameters()"),
    "pickle": "with open('m.pkl', 'rb') as f:\n    model = pickle.load(f)\n"
    + ADAMW.format(params="model.parameters()"),
    "walrus": "if (model := torch.load('m.pt')) is not None:\n    "
    + ADAMW.format(params="list(model.parameters())"),
    "tuple_target": "model, step = torch.load('ckpt.pt')\n"
    + ADAMW.format(params="model.parameters()"),
    "part_of_loaded": "model = torch.load('m.pt')\n"
    + ADAMW.format(params="model.encoder.parameters()"),
    "attribute_in_other_method": "class Trainer:\n    def __init__(self, path):\n"
    "        self.model = torch.load(path).to('cpu')\n\n    def setup(self):\n        self."
    + ADAMW.format(params="self.model.parameters()"),
    # probe s41a F2: the load carried on (each measured 0.055 relative off torch before)
    "alias": "net = torch.load('m.pt')\nmodel = net\n" + ADAMW.format(params="model.parameters()"),
    "helper_function": "def restore(path):\n    m = torch.load(path)\n    m.eval()\n    return m\n\n\n"
    "model = restore('m.pt')\n" + ADAMW.format(params="model.parameters()"),
    "wrapper_and_deepcopy": "import copy\nbase = copy.deepcopy(torch.nn.DataParallel(torch.load('m.pt')))\n"
    "model = base.module\n" + ADAMW.format(params="model.parameters()"),
    "serialization_import": "from torch.serialization import load\nmodel = load('m.pt')\n"
    + ADAMW.format(params="model.parameters()"),
    "function_alias": "import functools\nload_cpu = functools.partial(torch.load, map_location='cpu')\n"
    "model = load_cpu('m.pt')\n" + ADAMW.format(params="model.parameters()"),
    "handed_to_a_class": "class Trainer:\n    def __init__(self, model):\n        self.model = model\n"
    "        self." + ADAMW.format(params="self.model.parameters()") + "\n\n"
    "trainer = Trainer(torch.load('m.pt'))\n",
    "parameter_list": "model = torch.load('m.pt')\nparams = [p for p in model.parameters()]\n"
    + ADAMW.format(params="params"),
    "getattr_load": "model = getattr(torch, 'load')('m.pt')\n"
    + ADAMW.format(params="model.parameters()"),
    "detection_builder": "model = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights='DEFAULT')\n"
    + ADAMW.format(params="model.parameters()"),
}
SAID = {"detection_builder": "fasterrcnn_resnet50_fpn"}
TWINS = {
    "class_built": "model = Net()\n" + ADAMW.format(params="model.parameters()"),
    "state_dict_loaded": "model = Net()\nmodel.load_state_dict(torch.load('m.pt'))\n"
    + ADAMW.format(params="model.parameters()"),
    "other_name_loaded": "model = Net()\nbest = torch.load('best.pt')\n"
    + ADAMW.format(params="model.parameters()"),
    "checkpoint_resume": "model = Net()\nckpt = torch.load('ckpt.pt')\nmodel.load_state_dict(ckpt['net'])\n"
    "best = ckpt['acc']\n" + ADAMW.format(params="model.parameters()"),
    # s42: torchvision's classification reference caches its dataset with torch.save
    "sized_by_a_loaded_dataset": "dataset = torch.load('cache.pt')\n"
    "model = torch.nn.Linear(4, len(dataset.classes))\n"
    + ADAMW.format(params="model.parameters()"),
    "classification_builder": "model = torchvision.models.resnet18(weights=None)\n"
    + ADAMW.format(params="model.parameters()"),
}


@pytest.mark.parametrize("name", sorted(LOADED))
def test_a_loaded_model_escapes_its_optimizer(name: str) -> None:
    said = SAID.get(name, "loaded whole")
    escapes_in_both_targets(HEAD + NET + LOADED[name], "torch.optim.AdamW", said)


@pytest.mark.parametrize("name", sorted(TWINS))
def test_the_twin_translates(name: str) -> None:
    converts_in_both_targets(HEAD + NET + TWINS[name], "torch.optim.AdamW")
