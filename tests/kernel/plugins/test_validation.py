import pytest
from orrery.kernel.errors import PluginValidationError
from orrery.kernel.plugins import validate_plugin_class
from orrery.sdk import Plugin, hookimpl


def check(cls: type) -> None:
    validate_plugin_class(cls, default_name="demo", default_version="1.0", where="test.py")


def test_a_minimal_plugin_is_valid() -> None:
    class Minimal(Plugin):
        pass

    spec = validate_plugin_class(Minimal, default_name="minimal", default_version="0.1", where="x")
    assert (spec.name, spec.version, spec.sandbox) == ("minimal", "0.1", False)


def bad(**attrs: object) -> type:
    return type("Bad", (Plugin,), attrs)


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (bad(name="Has Spaces"), "plugin name 'Has Spaces' is invalid"),
        (bad(version="one"), "not a PEP 440 version"),
        (
            bad(requires={"metrics": ">>0.1"}),
            "requires['metrics'] = '>>0.1' is not a PEP 440 specifier",
        ),
        (bad(requires=["metrics"]), "requires must be a dict"),
        (bad(optional={"Bad Name": ""}), "not a valid plugin name"),
        (bad(requires={"x": ""}, optional={"x": ""}), "in both requires and optional"),
        (bad(Config=dict), "Config must be a pydantic BaseModel subclass"),
        (bad(permissions="bus.publish:x"), "permissions must be a list"),
        (bad(permissions=["teleport:moon"]), "teleport"),
        (bad(sandbox="yes"), "sandbox must be True or False"),
    ],
)
def test_invalid_declarations_say_what_to_fix(cls: type, message: str) -> None:
    with pytest.raises(
        PluginValidationError, match=message.replace("[", r"\[").replace("]", r"\]")
    ):
        check(cls)


def test_not_a_plugin_class() -> None:
    with pytest.raises(PluginValidationError, match="not a subclass of orrery.sdk.Plugin"):
        check(object)
    with pytest.raises(PluginValidationError):
        check(Plugin)


def test_misspelled_hook_gets_a_suggestion() -> None:
    class Typo(Plugin):
        @hookimpl
        def orrery_strat(self, ctx):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(PluginValidationError, match="did you mean orrery_start"):
        check(Typo)


def test_hook_without_marker_is_reported() -> None:
    class Unmarked(Plugin):
        async def orrery_start(self, ctx):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(PluginValidationError, match="not marked @hookimpl"):
        check(Unmarked)


def test_hook_with_unknown_argument_is_reported() -> None:
    class Args(Plugin):
        @hookimpl
        async def orrery_start(self, context):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(PluginValidationError, match="unknown argument.*context.*allowed: ctx"):
        check(Args)
