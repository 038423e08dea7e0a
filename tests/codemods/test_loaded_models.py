"""Models whose frozen parameters the code does not show (s41): a model loaded whole
(``torch.load``, ``torch.jit.load``, ``torch.hub.load``, ``pickle.load``: the map's
``parameters.loaded_models``) carries the requires_grad flags it was saved with, and
torchvision's detection builders freeze their backbone's first blocks by default (the map's
``freezing_calls``). torch skips a frozen parameter (no update, no weight decay), the
translation updated every leaf: both escape now, in both targets. The twins (a model built by a
class, a state_dict loaded into it, a loaded tensor that is no model) still translate."""

from __future__ import annotations

from pathlib import Path

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
    # probe s41 F14: a module class loading a part of itself whole
    "loaded_by_its_class": "class Backboned(torch.nn.Module):\n    def __init__(self):\n"
    "        super().__init__()\n        self.backbone = torch.load('backbone.pt')\n\n"
    "    def forward(self, x):\n        return self.backbone(x)\n\n\n"
    "model = Backboned()\n" + ADAMW.format(params="model.parameters()"),
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
    "a_data_set_class_loading_its_data": "class Data:\n    def __init__(self):\n"
    "        self.rows = torch.load('rows.pt')\n\n\n"
    "data = Data()\nmodel = torch.nn.Linear(4, data.rows.shape[1])\n"
    + ADAMW.format(params="model.parameters()"),
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


MODELS = """\
import torch


class Backboned(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = {backbone}

    def forward(self, x):
        return self.backbone(x)
"""
TRAIN = (
    "import torch\nfrom pkg.models import Backboned\n\nmodel = Backboned()\n"
    "opt = torch.optim.AdamW(model.parameters(), lr=1e-3)\n"
)


def test_a_module_class_of_another_file_loading_a_model_escapes(tmp_path: Path) -> None:
    from tests.differential.test_hidden_code_of_another_file import _translated

    models = MODELS.format(backbone="torch.load('backbone.pt', weights_only=False)")
    translation = _translated(tmp_path, {"pkg/models.py": models, "pkg/train.py": TRAIN})
    (record,) = [r for r in translation.escapes if r.api == "torch.optim.AdamW"]
    assert "pkg/models.py:" in record.reason and "loaded whole" in record.reason, record.reason


def test_a_module_class_of_another_file_building_its_parts_translates(tmp_path: Path) -> None:
    from tests.differential.test_hidden_code_of_another_file import _translated

    models = MODELS.format(backbone="torch.nn.Linear(4, 2)")
    translation = _translated(tmp_path, {"pkg/models.py": models, "pkg/train.py": TRAIN})
    assert not [r for r in translation.escapes if r.api == "torch.optim.AdamW"], translation.code
