"""Freezes made by library code (probe s41): transformers models that freeze parameters of their
own when built (Whisper's encoder positions: 0.076 relative off torch over 36 updates when the
optimizer converted; the map's ``parameters.freezing_classes``), transformers' freezing methods
(``model.freeze_feature_encoder()``: 0.023; the map's ``freeze_calls``) and a class overriding
``named_modules``, which torch's ``parameters()`` goes through (1.37). Each escapes its optimizer
in both targets; the twins (a model that freezes nothing, no freezing call) still translate."""

from __future__ import annotations

import pytest

from tests.support import converts_in_both_targets, escapes_in_both_targets

ADAMW = "optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)\n"
HEAD = "import torch\nimport transformers\nfrom transformers import WhisperForConditionalGeneration\n\n"
NET = (
    "class Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.fc = torch.nn.Linear(4, 2)\n\n    def forward(self, x):\n"
    "        return self.fc(x)\n{override}\n\n"
)
OVERRIDE = (
    "\n    def named_modules(self, memo=None, prefix='', remove_duplicate=True):\n"
    "        yield prefix, self\n"
)
FROZEN = {
    "whisper_from_pretrained": (
        "model = WhisperForConditionalGeneration.from_pretrained('openai/whisper-tiny')\n",
        "WhisperForConditionalGeneration.from_pretrained",
    ),
    "whisper_from_config": (
        "model = transformers.WhisperModel(transformers.WhisperConfig())\n",
        "transformers.WhisperModel",
    ),
    "freeze_feature_encoder": (
        "model = transformers.Wav2Vec2ForCTC.from_pretrained('facebook/wav2vec2-base')\n"
        "model.freeze_feature_encoder()\n",
        "freeze_feature_encoder",
    ),
    "load_adapter": (
        "model = transformers.AutoModelForCausalLM.from_pretrained('gpt2')\n"
        "model.load_adapter('./lora')\n",
        "load_adapter",
    ),
    "named_modules_overridden": (
        NET.format(override=OVERRIDE) + "model = Net()\n",
        "named_modules",
    ),
}
TWINS = {
    "bert": "model = transformers.BertForSequenceClassification.from_pretrained('bert-base')\n",
    "wav2vec2_unfrozen": "model = transformers.Wav2Vec2ForCTC.from_pretrained('w')\n",
    "net": NET.format(override="") + "model = Net()\n",
}


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_the_optimizer_escapes_in_both_targets(name: str) -> None:
    built, said = FROZEN[name]
    escapes_in_both_targets(HEAD + built + ADAMW, "torch.optim.AdamW", said)


@pytest.mark.parametrize("name", sorted(TWINS))
def test_the_twin_translates(name: str) -> None:
    converts_in_both_targets(HEAD + TWINS[name] + ADAMW, "torch.optim.AdamW")
