"""The onboarding example under examples/ works as its README says."""

from __future__ import annotations

from pathlib import Path

from orrery.sdk.testing import HarnessFactory
from orrery_workflows import WORKFLOWS, WorkflowsPlugin

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "workflows-onboarding"
CUSTOMER = {"customer": {"name": "Ada", "email": "ada@example.com"}}


async def test_the_onboarding_example_approves_and_compensates(
    orrery_kernel: HarnessFactory,
) -> None:
    config = {"plugins": {"workflows": {"dirs": [str(EXAMPLE / "workflows")]}}}
    async with orrery_kernel(WorkflowsPlugin, config=config,
                             plugins_dirs=[EXAMPLE / "plugins"]) as k:  # fmt: skip
        k.assert_state("onboarding_services", "active")
        wf = k.service(WORKFLOWS)
        approved = await wf.start("onboarding", CUSTOMER)
        assert (await wf.wait(approved))["status"] == "waiting"
        await wf.decide(approved, "approve", True, by="ops", data={"plan": "pro"})
        done = await wf.wait(approved)
        denied = await wf.start("onboarding", CUSTOMER)
        await wf.wait(denied)
        await wf.decide(denied, "approve", False, by="ops")
        undone = await wf.wait(denied)
        bad_plan = await wf.start("onboarding", CUSTOMER)
        await wf.wait(bad_plan)
        await wf.decide(bad_plan, "approve", True, by="ops", data={"plan": "unknown"})
        failed = await wf.wait(bad_plan)
    assert done["status"] == "completed"
    assert done["steps"]["setup_payment"]["output"] == {"account": "acct-1", "plan": "pro"}
    assert undone["status"] == "compensated"
    assert undone["steps"]["create_account"]["compensation"]["status"] == "done"
    assert failed["status"] == "compensated" and "no such plan" in failed["error"]
