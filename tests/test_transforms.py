import torch

from als4gan.data.transforms import SeededDataset, TrainAugment


def _sample() -> dict[str, object]:
    mask = torch.zeros(40, 50, dtype=torch.long)
    mask[:, 25:] = 3
    image = torch.rand(3, 40, 50, generator=torch.Generator().manual_seed(0))
    return {"image": image, "mask": mask, "id": "x", "label": 0}


def test_augment_is_deterministic_per_generator_and_keeps_labels_discrete() -> None:
    augment = TrainAugment(crop_size=48, scale_range=(0.5, 1.5))
    first = augment(_sample(), torch.Generator().manual_seed(5))
    again = augment(_sample(), torch.Generator().manual_seed(5))
    assert first["image"].shape == (3, 48, 48)
    assert torch.equal(first["mask"], again["mask"])
    for seed in range(20):
        out = augment(_sample(), torch.Generator().manual_seed(seed))
        assert set(out["mask"].unique().tolist()) <= {0, 3, 255}  # nearest only, pad = ignore


def test_seeded_dataset_uses_item_seed() -> None:
    class Two(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __len__(self) -> int:
            return 2

        def __getitem__(self, index: int) -> dict[str, object]:
            return _sample()

    dataset = SeededDataset(Two(), TrainAugment(crop_size=32))  # type: ignore[arg-type]
    assert torch.equal(dataset[(0, 11)]["image"], dataset[(1, 11)]["image"])
    assert not torch.equal(dataset[(0, 11)]["image"], dataset[(0, 12)]["image"])


def test_base_size_with_pillow_resize_serves_the_acquisition_model() -> None:
    # the whole image to a base_size square (times the scale), then the same pad/crop/mirror
    from als4gan.data.transforms import resize_sample_pillow

    augment = TrainAugment(32, None, mirror=False, resize=resize_sample_pillow, base_size=32)
    out = augment(_sample(), torch.Generator().manual_seed(0))
    assert out["image"].shape == (3, 32, 32) and out["mask"].dtype == torch.long
    assert out["mask"][:, :12].eq(0).all() and out["mask"][:, -12:].eq(3).all()
    jitter = TrainAugment(32, (0.5, 1.5), resize=resize_sample_pillow, base_size=32)
    outputs = []
    for threads in (1, 2):  # Pillow: the same bits for any number of torch threads
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            outputs.append([jitter(_sample(), torch.Generator().manual_seed(s)) for s in range(6)])
        finally:
            torch.set_num_threads(before)
    for one, two in zip(*outputs, strict=True):
        assert one["image"].numpy().tobytes() == two["image"].numpy().tobytes()
        assert torch.equal(one["mask"], two["mask"])
        assert set(one["mask"].unique().tolist()) <= {0, 3, 255}
