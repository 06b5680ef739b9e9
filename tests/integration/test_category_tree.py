"""The category tree aggregate behind renames, moves and deletions: started from the categories
of a store older than it, it keeps every category's ancestors right, and racing moves never
make a cycle (each move conflicts on the tree's version and its retry sees the other)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from aggregates.catalog import Category, CategoryCycle, CategoryTree
from aggregates.errors import Conflict
from commands.application import EventMeta, recording_as
from commands.catalog import CreateCategory
from commands.moderation import ChangeCategory, DeleteCategory
from shopledger.bootstrap import Container, bootstrap
from tests.conftest import make_settings

META = EventMeta("system:test", "category-tree")


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Container]:
    c = bootstrap(make_settings(f"sqlite:///{tmp_path / 'tree.db'}", tmp_path))
    yield c
    c.close()


def test_a_store_older_than_the_tree_starts_it_from_its_categories(shop: Container) -> None:
    with recording_as(EventMeta("system:test", "legacy")):  # as saved before the tree existed
        root = Category.create(uuid4(), "飲品", None)
        tea = Category.create(uuid4(), "茶", root)
        green = Category.create(uuid4(), "綠茶", tea)
        shop.app.save(root, tea, green)

    with pytest.raises(CategoryCycle):
        shop.bus.execute(ChangeCategory(root.id, parent_id=str(green.id)), META)
    with pytest.raises(Conflict):  # the legacy sibling names count
        shop.bus.execute(CreateCategory(uuid4(), "飲品", None), META)
    shop.bus.execute(ChangeCategory(tea.id, parent_id=None), META)

    tree: CategoryTree = shop.app.repository.get(CategoryTree.ID)
    assert tree.nodes[str(tea.id)]["parent"] is None
    moved: Category = shop.app.repository.get(green.id)
    assert moved.path == [str(tea.id)]  # the grandchild's ancestors followed
    with pytest.raises(Conflict):
        shop.bus.execute(DeleteCategory(tea.id, has_products=False), META)
    shop.bus.execute(DeleteCategory(green.id, has_products=False), META)
    assert str(green.id) not in shop.app.repository.get(CategoryTree.ID).nodes


def test_racing_opposite_moves_never_make_a_cycle(shop: Container) -> None:
    def create(name: str) -> UUID:
        return UUID(str(shop.bus.execute(CreateCategory(uuid4(), name, None), META).result.id))

    a, b = create("A"), create("B")
    for _ in range(10):
        outcomes = race(shop, (a, b), (b, a))
        assert sorted(outcomes) == ["cycle", "moved"]
        tree: CategoryTree = shop.app.repository.get(CategoryTree.ID)
        parents = [tree.nodes[str(c)]["parent"] for c in (a, b)]
        assert parents.count(None) == 1
        for child in (a, b):  # back to the roots for the next round
            shop.bus.execute(ChangeCategory(child, parent_id=None), META)


def race(shop: Container, *moves: tuple[UUID, UUID]) -> list[str]:
    """Run the moves (child, new parent) at once; what each came to."""
    outcomes: list[str] = []
    start = threading.Barrier(len(moves))

    def move(child: UUID, parent: UUID) -> None:
        start.wait()
        try:
            shop.bus.execute(ChangeCategory(child, parent_id=str(parent)), META)
            outcomes.append("moved")
        except CategoryCycle:
            outcomes.append("cycle")

    threads = [threading.Thread(target=move, args=m) for m in moves]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes
