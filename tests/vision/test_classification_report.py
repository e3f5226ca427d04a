from collections import Counter

import torch
import torch.nn.functional as F
from lightning.pytorch.strategies import SingleDeviceStrategy

from litlab.core.data_facts import DataFacts
from litlab.vision.callbacks.classification_report import ClassificationReport


class RecordingWandb:
    """Stands in for litlab's WandbLogger: records what would be logged."""

    def __init__(self):
        self.logged, self.images = [], []
        self.experiment = self

    def log(self, data):
        self.logged.append(data)

    def log_image(self, key, images, caption):
        self.images.append((key, images, caption))


class FakeTrainer:
    def __init__(self, logger):
        self.loggers = [logger]
        self.strategy = SingleDeviceStrategy(torch.device("cpu"))
        facts = DataFacts(classes=("zero", "one", "two"))
        self.datamodule = type("DM", (), {"data_facts": facts})()


def test_report_keeps_the_highest_loss_images_and_all_predictions(monkeypatch):
    import litlab.vision.callbacks.classification_report as report_module

    monkeypatch.setattr(report_module, "WandbLogger", RecordingWandb)
    torch.manual_seed(0)
    report = ClassificationReport(num_worst=3)
    logger = RecordingWandb()
    trainer = FakeTrainer(logger)
    report.on_test_epoch_start(trainer, None)
    all_logits, all_targets, all_images = [], [], []
    for batch_idx in range(4):
        images = torch.randn(5, 1, 4, 4)
        logits, targets = torch.randn(5, 3) * 3, torch.randint(0, 3, (5,))
        outputs = {"logits": logits, "targets": targets}
        report.on_test_batch_end(trainer, None, outputs, (images, targets), batch_idx)
        all_logits.append(logits)
        all_targets.append(targets)
        all_images.append(images)
    report.on_test_epoch_end(trainer, None)

    logits, targets, images = torch.cat(all_logits), torch.cat(all_targets), torch.cat(all_images)
    ((key, chart),) = (item for logged in logger.logged for item in logged.items())
    assert key == "test/confusion_matrix"
    # W&B's chart holds a count for each (true, predicted) pair of class names.
    names = ["zero", "one", "two"]
    counts = Counter(
        {(names.index(true), names.index(pred)): n for true, pred, n in chart.table.data if n}
    )
    assert counts == Counter(zip(targets.tolist(), logits.argmax(-1).tolist(), strict=True))
    assert chart.table.columns == ["Actual", "Predicted", "nPredictions"]

    worst = F.cross_entropy(logits, targets, reduction="none").topk(3).indices
    ((_, shown, captions),) = logger.images
    assert len(shown) == len(captions) == 3
    for rank, index in enumerate(worst.tolist()):
        predicted = int(logits[index].argmax())
        probability = logits[index].softmax(-1)[predicted]
        assert captions[rank] == (
            f"pred {names[predicted]} ({probability:.2f}), true {names[int(targets[index])]}"
        )
        expected = images[index, 0]
        expected = (expected - expected.min()) / (expected.max() - expected.min())
        assert shown[rank].dtype.name == "uint8"
        assert torch.allclose(torch.from_numpy(shown[rank]).float(), expected * 255, atol=0.51)


def test_report_shows_every_image_when_the_test_set_is_smaller_than_num_worst(monkeypatch):
    import litlab.vision.callbacks.classification_report as report_module

    monkeypatch.setattr(report_module, "WandbLogger", RecordingWandb)
    report = ClassificationReport(num_worst=16)
    logger = RecordingWandb()
    trainer = FakeTrainer(logger)
    report.on_test_epoch_start(trainer, None)
    logits, targets = torch.tensor([[4.0, 0.0, 0.0], [0.0, 0.0, 4.0]]), torch.tensor([0, 1])
    outputs = {"logits": logits, "targets": targets}
    report.on_test_batch_end(trainer, None, outputs, (torch.randn(2, 1, 4, 4), targets), 0)
    report.on_test_epoch_end(trainer, None)

    ((chart,),) = (logged.values() for logged in logger.logged)
    assert [(true, pred) for true, pred, n in chart.table.data if n] == [
        ("zero", "zero"),
        ("one", "two"),
    ]
    ((_, shown, captions),) = logger.images
    assert len(shown) == 2
    assert captions[0].endswith("true one")  # the wrong answer first
