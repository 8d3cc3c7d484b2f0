"""The example plugin against a real in-process kernel (fixtures from orrery.sdk.testing)."""

from orrery_hello import GREETER, HelloPlugin


async def test_greets_and_counts(orrery_kernel):
    async with orrery_kernel(HelloPlugin) as k:
        k.assert_state("hello", "active")
        greeted = k.expect("hello.greeted")
        assert await k.request("hello.greet", {"name": "Ada"}) == {
            "text": "Hello, Ada!",
            "greeted": 1,
        }
        [event] = await greeted.wait()
        assert event.subject == "Ada"
        assert (await k.service(GREETER).greet("Grace"))["greeted"] == 2


async def test_template_is_configurable_and_validated(orrery_kernel):
    async with orrery_kernel(HelloPlugin, config={"template": "Hej {name}"}) as k:
        assert (await k.request("hello.greet", {"name": "Bo"}))["text"] == "Hej Bo"
    async with orrery_kernel(HelloPlugin, config={"template": "no placeholder"}) as k:
        k.assert_state("hello", "failed")
        assert "template must contain {name}" in k.plugins["hello"].error


async def test_bad_request_gets_an_answer_not_a_crash(orrery_kernel):
    async with orrery_kernel(HelloPlugin) as k:
        assert "error" in await k.request("hello.greet", {"nombre": "x"})
