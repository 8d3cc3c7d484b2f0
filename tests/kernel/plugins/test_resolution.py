from hypothesis import given, settings
from hypothesis import strategies as st
from orrery.kernel.plugins import Declared, resolve
from packaging.specifiers import SpecifierSet


def d(
    version: str = "1.0",
    requires: dict[str, str] | None = None,
    optional: dict[str, str] | None = None,
) -> Declared:
    return Declared(
        version,
        {k: SpecifierSet(v) for k, v in (requires or {}).items()},
        {k: SpecifierSet(v) for k, v in (optional or {}).items()},
    )


def test_dependencies_start_first_and_waves_group_independent_plugins() -> None:
    r = resolve(
        {"app": d(requires={"db": ">=1", "cache": ""}), "db": d(), "cache": d(), "solo": d()}
    )
    assert r.order.index("db") < r.order.index("app")
    assert r.order.index("cache") < r.order.index("app")
    assert r.waves == [["cache", "db", "solo"], ["app"]]
    assert not r.failures


def test_missing_dependency_fails_only_its_dependents() -> None:
    r = resolve({"a": d(requires={"ghost": ""}), "b": d(requires={"a": ""}), "c": d()})
    assert r.order == ["c"]
    assert "'ghost', which is not installed" in str(r.failures["a"])
    assert r.failures["b"].chain == ("b", "a", "ghost")
    assert "b → a → ghost" in str(r.failures["b"])


def test_version_conflict_names_both_versions() -> None:
    r = resolve({"a": d(requires={"b": ">=2,<3"}), "b": d("1.4")})
    message = str(r.failures["a"])
    assert "b<3,>=2" in message and "version 1.4" in message


def test_cycle_is_reported_with_its_chain_and_the_rest_still_resolves() -> None:
    r = resolve(
        {
            "a": d(requires={"b": ""}),
            "b": d(requires={"c": ""}),
            "c": d(requires={"a": ""}),
            "x": d(),
        }
    )
    assert r.order == ["x"]
    assert "a → b → c → a" in str(r.failures["a"])
    assert "b → c → a → b" in str(r.failures["b"])


def test_self_dependency_is_a_cycle() -> None:
    r = resolve({"a": d(requires={"a": ""})})
    assert "a → a" in str(r.failures["a"])


def test_optional_dependency_orders_but_never_blocks() -> None:
    r = resolve({"a": d(optional={"metrics": ""}), "metrics": d(), "b": d(optional={"ghost": ""})})
    assert r.order.index("metrics") < r.order.index("a")
    assert "b" in r.order and not r.failures


def test_optional_edge_that_would_close_a_cycle_is_dropped() -> None:
    r = resolve({"a": d(requires={"b": ""}), "b": d(optional={"a": ""})})
    assert r.order == ["b", "a"] and not r.failures


def test_broken_plugins_fail_their_dependents_with_the_reason() -> None:
    r = resolve({"a": d(requires={"cfg": ""})}, broken={"cfg": "invalid config for plugin 'cfg'"})
    assert "invalid config for plugin 'cfg'" in str(r.failures["a"])


def test_dependents_are_listed_transitively_in_start_order() -> None:
    r = resolve({"a": d(), "b": d(requires={"a": ""}), "c": d(requires={"b": ""}), "e": d()})
    assert r.dependents("a") == ["b", "c"]


NAMES = [f"p{i}" for i in range(8)]


@st.composite
def graphs(draw: st.DrawFn, acyclic: bool) -> dict[str, Declared]:
    present = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=8, unique=True))
    plugins = {}
    for i, name in enumerate(present):
        pool = present[:i] if acyclic else present + ["ghost"]
        if not pool:
            plugins[name] = d()
            continue
        reqs = draw(st.lists(st.sampled_from(pool), max_size=3, unique=True))
        opts = draw(st.lists(st.sampled_from(pool), max_size=2, unique=True))
        plugins[name] = d(
            requires={r: "" for r in reqs}, optional={o: "" for o in opts if o not in reqs}
        )
    return plugins


def _cyclic(name: str, plugins: dict[str, Declared]) -> bool:
    """Reference check: can ``name`` reach itself through requires?"""
    todo, seen = list(plugins[name].requires), set()
    while todo:
        n = todo.pop()
        if n == name:
            return True
        if n in plugins and n not in seen:
            seen.add(n)
            todo += list(plugins[n].requires)
    return False


@settings(max_examples=300)
@given(graphs(acyclic=True))
def test_acyclic_complete_graphs_resolve_entirely(plugins: dict[str, Declared]) -> None:
    r = resolve(plugins)
    assert not r.failures
    assert sorted(r.order) == sorted(plugins)
    position = {n: i for i, n in enumerate(r.order)}
    for name, decl in plugins.items():
        for dep in [*decl.requires, *decl.optional]:
            assert position[dep] < position[name]


@settings(max_examples=500)
@given(graphs(acyclic=False))
def test_arbitrary_graphs_partition_into_ordered_and_explained_failures(
    plugins: dict[str, Declared],
) -> None:
    r = resolve(plugins)
    assert set(r.order) | set(r.failures) == set(plugins)
    assert not set(r.order) & set(r.failures)
    position = {n: i for i, n in enumerate(r.order)}
    for name in r.order:
        for dep in plugins[name].requires:
            assert dep in position and position[dep] < position[name]
        for dep in r.dependencies[name]:
            assert position[dep] < position[name]
    for name, failure in r.failures.items():
        reqs = plugins[name].requires
        explained = (
            any(dep not in plugins for dep in reqs)
            or _cyclic(name, plugins)
            or any(dep in r.failures for dep in reqs)
        )
        assert explained, f"{name} failed without a reason: {failure}"
        assert failure.chain[0] == name
    for name in r.order:
        assert not _cyclic(name, plugins)


async def test_enable_does_not_start_a_plugin_whose_requires_are_unmet(
    make_kernel, recording_plugin, journal_file
) -> None:
    recording_plugin("needy", requires={"absent": ">=1"})
    async with make_kernel(config={"plugins": {"needy": {"enabled": False}}}) as k:
        info = await k.enable("needy")
        assert info.state == "failed"
        assert "requires 'absent>=1'" in (info.error or "")
    assert not journal_file.exists()  # orrery_start never ran


async def test_a_rescan_does_not_start_a_new_plugin_whose_requires_are_unmet(
    make_kernel, install_distribution, plugins_dir
) -> None:
    async with make_kernel(entry_points=True) as k:
        install_distribution(
            "orrery-needy",
            "1.0",
            "orrery_needy",
            """
            from orrery.sdk import Plugin, hookimpl

            class Needy(Plugin):
                requires = {"absent": ""}

                @hookimpl
                async def orrery_start(self, ctx):
                    ctx.bus.subscribe("needy.ask", lambda e: "up")
            """,
            {"needy": "orrery_needy:Needy"},
        )
        changes = await k.rescan()
        assert changes["added"] == ["needy"]
        info = k.plugins["needy"]
        assert info.state == "failed"
        assert "requires 'absent', which is not installed" in (info.error or "")
