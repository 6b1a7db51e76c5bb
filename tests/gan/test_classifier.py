"""The one feature CNN of the image metrics (``lightning_ex2/gan/classifier.py``).

``tests/fixtures/gan_main/classifier_golden.pt`` holds the shipped classifiers' features and
logits on fixed inputs, recorded by main f9c88f2. Those outputs are float32 and were recorded
on one CPU; another CPU's vector instructions (or ``ATEN_CPU_CAPABILITY``, oneDNN's and MKL's
dispatch) change their last bits, so they are compared at a tolerance
(:func:`assert_close_to_recorded`): ~1e-6 relative separates CPUs, while a changed layer,
resize or weight moves an output by far more than the tolerance.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightning_ex2.gan import ClassifierFeatures, ClassifierLogits, FeatureCNN
from lightning_ex2.gan.classifier import (
    CLASSIFIERS,
    DigitsClassifier,
    FashionClassifier,
    classifier_weights,
    load_feature_cnn,
)

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "gan_main"

#: tolerance on float32 outputs recorded on another CPU, relative to each output's largest |value|
RECORDED_RTOL = 1e-4


def assert_close_to_recorded(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    """``got`` equals the recorded float32 ``want`` up to :data:`RECORDED_RTOL` of its scale."""
    scale = float(want.abs().max())
    torch.testing.assert_close(
        got, want, rtol=RECORDED_RTOL, atol=RECORDED_RTOL * scale, msg=lambda m: f"{what}: {m}"
    )


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_shipped_classifiers_give_main_s_outputs(name: str) -> None:
    golden = torch.load(DATA / "classifier_golden.pt", weights_only=True)
    features, logits = ClassifierFeatures(name), ClassifierLogits(name)
    assert (features.num_features, logits.num_features) == (64, 10)
    # results name the shipped file from the checkout's root, as the docs do
    assert features.description.endswith(
        f", weights lightning_ex2/gan/weights/{name}_classifier.pt"
    )
    with torch.no_grad():
        for key, x in golden["inputs"].items():  # native size, resized, RGB
            for kind, net in (("features", features), ("logits", logits)):
                assert_close_to_recorded(net(x), golden[f"{name}/{kind}/{key}"], f"{kind} {key}")


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_extractors_around_a_loaded_classifier_give_the_same_outputs(name: str) -> None:
    golden = torch.load(DATA / "classifier_golden.pt", weights_only=True)
    x = golden["inputs"]["rgb16"]
    clf = load_feature_cnn(name)
    with torch.no_grad():
        for kind, net in (
            ("features", ClassifierFeatures(clf)),
            ("logits", ClassifierLogits(clf)),
            ("features", ClassifierFeatures(name, str(classifier_weights(name)))),
            ("logits", ClassifierLogits(name, str(classifier_weights(name)))),
        ):
            assert_close_to_recorded(net(x), golden[f"{name}/{kind}/rgb16"], f"{name} {kind}")


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_shipped_weights_keys_are_the_feature_cnn_s(name: str) -> None:
    blob = torch.load(classifier_weights(name), weights_only=True)
    network = CLASSIFIERS[name].network()
    assert isinstance(network, FeatureCNN)
    assert list(blob["state_dict"]) == list(network.state_dict())
    assert {k: v.shape for k, v in blob["state_dict"].items()} == {
        k: v.shape for k, v in network.state_dict().items()
    }


def test_feature_cnn_is_parametrized() -> None:
    net = FeatureCNN(16, channels=3, widths=(4, 8), pools=(True, False), num_classes=3)
    x = torch.rand(2, 3, 20, 20) * 2 - 1  # resized to 16
    assert net.features(x).shape == (2, 64) and net(x).shape == (2, 3)
    assert net.fc.in_features == 8 * 8 * 8
    assert DigitsClassifier().fc.in_features == 256 and FashionClassifier().fc.in_features == 576
    with pytest.raises(ValueError, match="one pool flag per stage"):
        FeatureCNN(8, widths=(4, 8), pools=(True,))
    with pytest.raises(ValueError, match="resize"):
        FeatureCNN(8, resize="nearest")


def test_unknown_classifier_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown classifier 'cifar'"):
        ClassifierFeatures("cifar")
