import pytest

from emofuse.protocol.folds import actor_folds


def test_six_folds_of_four_consecutive_actors():
    folds = actor_folds(range(1, 25), n_folds=6, val_fraction=0.2, seed=0)
    assert [f.test_actors for f in folds] == [tuple(range(s, s + 4)) for s in range(1, 25, 4)]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_actor_sets_are_disjoint_and_cover_everyone(seed):
    folds = actor_folds(range(1, 25), n_folds=6, val_fraction=0.2, seed=seed)
    tested = [a for f in folds for a in f.test_actors]
    assert sorted(tested) == list(range(1, 25))
    for f in folds:
        assert not set(f.test_actors) & set(f.val_actors)
        assert not set(f.test_actors) & set(f.train_actors)
        assert not set(f.val_actors) & set(f.train_actors)
        assert set(f.test_actors) | set(f.val_actors) | set(f.train_actors) == set(range(1, 25))
        assert len(f.val_actors) == 4
        assert sum(a % 2 for a in f.val_actors) == 2  # two male, two female


def test_validation_actors_are_seeded():
    a = actor_folds(range(1, 25), 6, 0.2, seed=3)
    b = actor_folds(range(1, 25), 6, 0.2, seed=3)
    c = actor_folds(range(1, 25), 6, 0.2, seed=4)
    assert a == b and a != c


def test_too_few_actors():
    with pytest.raises(ValueError, match="cannot make"):
        actor_folds([1, 2], n_folds=6, val_fraction=0.2, seed=0)
