"""Progressive resizing, runs that resume exactly, and distillation from a teacher."""
from __future__ import annotations

import time

import pytest
import torch

from medimg_core.training.fit import RunStopped, distillation_loss
from medimg_core.training.schedule import resize_batch, size_schedule
from medimg_core.training.train import TrainConfig, task_spec, train, training_data, training_split
from tests.xrays import write_kaggle_layout


def test_progressive_sizes_rise_from_the_start_size_and_end_at_the_full_size():
    sizes = size_schedule(10, 224, start=128, final_epochs=3)
    assert sizes[0] == 128 and sizes[-3:] == [224, 224, 224]
    assert sizes == sorted(sizes) and all(s % 16 == 0 for s in sizes)


def test_without_a_start_size_every_epoch_trains_at_the_full_size():
    assert size_schedule(4, 128) == [128] * 4
    assert size_schedule(4, 128, start=160) == [128] * 4  # a 'start' above the full size changes nothing


def test_a_batch_is_scaled_to_the_epochs_size_by_area_averaging():
    x = torch.rand(2, 1, 64, 64)
    small = resize_batch(x, 32)
    assert small.shape == (2, 1, 32, 32)
    assert torch.allclose(small[0, 0, 0, 0], x[0, 0, :2, :2].mean(), atol=1e-6)
    assert resize_batch(x, 64) is x


@pytest.fixture(scope="module")
def xrays(tmp_path_factory):
    """A tiny chest X-ray folder in Kaggle's layout."""
    return write_kaggle_layout(tmp_path_factory.mktemp("xrays"), per_class=16)


def tiny(**changes) -> TrainConfig:
    """A tiny pneumonia run on the drawn X-rays (own data only, 32 px)."""
    settings = dict(task="pneumonia", architecture="compact-cnn", width=8, epochs=4, batch_size=8, image_size=32,
                    sources=False, baseline=False, val_fraction=0.25)
    return TrainConfig(**(settings | changes))


def losses(card: dict) -> list[float]:
    """The training loss of each epoch of a run's card."""
    return [row["train_loss"] for row in card["training"]["history"]]


def test_a_resumed_run_computes_the_same_losses_as_one_that_never_stopped(xrays, tmp_path):
    _, whole = train(tiny(), xrays, progress=False, state_dir=tmp_path / "whole")
    with pytest.raises(RunStopped, match="after epoch 1 of 4"):
        train(tiny(), xrays, progress=False, state_dir=tmp_path / "stopped", deadline=time.monotonic())
    _, resumed = train(tiny(), xrays, progress=False, state_dir=tmp_path / "stopped", resume=True)
    assert losses(resumed) == losses(whole)
    assert resumed["validation"]["accuracy"] == whole["validation"]["accuracy"]


def test_a_run_is_not_resumed_with_other_settings(xrays, tmp_path):
    with pytest.raises(RunStopped):
        train(tiny(), xrays, progress=False, state_dir=tmp_path, deadline=time.monotonic())
    with pytest.raises(ValueError, match="lr differ"):
        train(tiny(lr=1e-2), xrays, progress=False, state_dir=tmp_path, resume=True)


def test_a_progressive_run_records_each_epochs_input_size(xrays):
    _, card = train(tiny(image_size=48, progressive_from=16, final_size_epochs=1), xrays, progress=False)
    assert [row["size"] for row in card["training"]["history"]] == [16, 32, 32, 48]


def test_the_distillation_loss_is_cross_entropy_without_a_teacher_share_and_zero_kl_on_the_teachers_logits():
    logits, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    plain = torch.nn.functional.cross_entropy(logits, labels)
    assert torch.allclose(distillation_loss(logits, torch.randn(6, 3), labels, 0.0, 4.0), plain)
    assert torch.allclose(distillation_loss(logits, logits, labels, 1.0, 4.0), torch.tensor(0.0), atol=1e-6)


def test_a_student_distilled_from_a_teacher_trains_and_records_it(xrays, tmp_path):
    teacher = tmp_path / "teacher.pt"
    train(tiny(width=16), xrays, out=teacher, progress=False)
    _, card = train(tiny(teacher=str(teacher), distill_alpha=0.7), xrays, progress=False)
    assert card["training"]["config"]["teacher"] == str(teacher)
    assert all(loss == loss for loss in losses(card))  # finite, not NaN


def test_a_student_of_several_teachers_learns_their_mean_and_records_each_with_its_validation_accuracy(xrays, tmp_path):
    teachers = [tmp_path / f"teacher{seed}.pt" for seed in (1, 2)]
    for seed, path in zip((1, 2), teachers):
        train(tiny(width=16, train_seed=seed), xrays, out=path, progress=False)
    _, card = train(tiny(teacher=[str(t) for t in teachers]), xrays, progress=False)
    record = card["training"]["teacher"]
    assert record["checkpoints"] == [str(t) for t in teachers]
    assert record["validation_n"] == card["validation"]["n"]
    assert record["validation_accuracy"] == pytest.approx(record["validation_right"] / record["validation_n"], abs=1e-5)


def test_another_training_seed_trains_other_weights_on_the_same_split(xrays):
    _, first = train(tiny(), xrays, progress=False)
    _, second = train(tiny(train_seed=7), xrays, progress=False)
    assert losses(first) != losses(second)
    spec = task_spec(tiny())
    ds, _ = training_data(spec, tiny(), xrays)
    split, other_seed = training_split(ds, spec, tiny()), training_split(ds, spec, tiny(train_seed=7))
    assert all((a == b).all() for a, b in zip(split, other_seed))


def test_a_teacher_of_the_classes_alone_teaches_only_the_class_outputs_on_images_of_those_classes():
    logits, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 2])  # label 2: 'other'
    plain = torch.nn.functional.cross_entropy(logits, labels)
    assert torch.allclose(distillation_loss(logits, logits[:, :2], labels, 1.0, 4.0), torch.tensor(0.0), atol=1e-6)
    assert torch.allclose(distillation_loss(logits, torch.randn(4, 2), torch.tensor([2, 2, 2, 2]), 0.5, 4.0),
                          torch.nn.functional.cross_entropy(logits, torch.tensor([2, 2, 2, 2])))
    assert not torch.allclose(distillation_loss(logits, torch.randn(4, 2), labels, 0.5, 4.0), plain)
