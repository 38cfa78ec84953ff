"""The prompt bank: the bundled file, its checks, and the no-repeat rotation."""

from __future__ import annotations

from collections import Counter

import pytest

from bot.errors import ConfigError
from bot.prompts.bank import (
    COMPETENCIES,
    Prompt,
    choose_next,
    load_bank,
)


def test_bundled_bank_covers_the_six_competencies() -> None:
    bank = load_bank()
    assert len(bank) >= 60
    counts = Counter(p.competency for p in bank)
    assert set(counts) == set(COMPETENCIES)
    assert min(counts.values()) >= 10
    assert len({p.id for p in bank}) == len(bank)
    assert all(len(p.text) < 280 for p in bank)


def test_rotation_visits_competencies_in_turn_and_never_repeats() -> None:
    bank = load_bank()
    used: list[str] = []
    cycle, last = 1, None
    order = list(COMPETENCIES)
    for n in range(len(bank)):
        choice = choose_next(bank, used, cycle, last)
        assert choice.cycle == 1
        assert choice.prompt.id not in used
        assert choice.prompt.competency == order[n % len(order)]
        used.append(choice.prompt.id)
        last = choice.prompt.competency
    assert sorted(used) == sorted(p.id for p in bank)
    # The bank is used up: a new cycle starts and prompts may come back.
    again = choose_next(bank, used, cycle, last)
    assert again.cycle == 2
    assert again.prompt.competency == order[len(bank) % len(order)]


def test_rotation_skips_a_competency_with_nothing_left() -> None:
    bank = [
        Prompt("a1", "inspire", "a"),
        Prompt("b1", "influence", "b"),
        Prompt("b2", "influence", "c"),
    ]
    first = choose_next(bank, [], 1, None)
    second = choose_next(bank, ["a1"], 1, "inspire")
    third = choose_next(bank, ["a1", "b1"], 1, "influence")
    assert [first.prompt.id, second.prompt.id, third.prompt.id] == ["a1", "b1", "b2"]
    assert third.cycle == 1


def test_empty_bank_is_an_error() -> None:
    with pytest.raises(ValueError):
        choose_next([], [], 1, None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[prompt]]\nid = "x"\ncompetency = "bravery"\ntext = "t"\n', "unknown competency"),
        ('[[prompt]]\nid = "x"\ncompetency = "inspire"\n', "needs an id and a text"),
        (
            '[[prompt]]\nid = "x"\ncompetency = "inspire"\ntext = "a"\n'
            '[[prompt]]\nid = "x"\ncompetency = "inspire"\ntext = "b"\n',
            "used twice",
        ),
        ('[[prompt]]\nid = "x"\ncompetency = "inspire"\ntext = "t"\nadvice = "zz"\n', "advice"),
        ("", "no [[prompt]]"),
        ("[[prompt]\n", "not valid TOML"),
    ],
)
def test_bad_bank_files_are_named_errors(tmp_path, body: str, message: str) -> None:
    path = tmp_path / "prompts.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_bank(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)
