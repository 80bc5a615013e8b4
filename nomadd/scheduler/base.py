"""What service, batch and system schedulers share: the retry loop and the eval's outcome."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from nomadd.scheduler.context import Env, PlanBuilder
from nomadd.scheduler.protocols import Planner, State
from nomadd.structs.alloc import AllocMetric
from nomadd.structs.codec_diff import fast_replace
from nomadd.structs.eval import EvalStatus, EvalTrigger, Evaluation
from nomadd.structs.job import Job

__all__ = ["Attempt", "BaseScheduler"]

logger = logging.getLogger(__name__)

BLOCKED_EVAL_DESCRIPTION = "created to place remaining allocations"


@dataclasses.dataclass(slots=True)
class Attempt:
    """The outcome of one planning pass."""

    done: bool
    refresh_index: int = 0
    failed_tg_allocs: dict[str, AllocMetric] = dataclasses.field(default_factory=dict)
    queued: dict[str, int] = dataclasses.field(default_factory=dict)
    class_eligibility: dict[str, bool] = dataclasses.field(default_factory=dict)
    escaped: bool = False
    job: Job | None = None
    snapshot_index: int = 0
    deployment_id: str = ""  # the deployment this pass created or worked on (Nomad's eval.DeploymentID)
    next_eval: str = ""  # the rolling-update follow-up this pass created (Nomad's eval.NextEval)


class BaseScheduler:
    """Runs :meth:`attempt` until its plan commits fully (or ``max_attempts``), then records
    the evaluation's outcome: complete (maybe with a blocked eval for what could not be placed),
    reblocked, or failed."""

    max_attempts = 5  # Nomad's maxServiceScheduleAttempts
    creates_blocked_evals = True

    def __init__(
        self,
        state: State,
        planner: Planner,
        *,
        seed: int | None = None,
        new_id: Callable[[], str] | None = None,
        now_ns: Callable[[], int] | None = None,
    ) -> None:
        self.state = state
        self.planner = planner
        self.env = Env.make(seed, new_id, now_ns)

    async def attempt(self, evaluation: Evaluation) -> Attempt:
        raise NotImplementedError

    async def submit(self, plan: PlanBuilder, snapshot_index: int) -> int:
        """Submit the plan; 0 when fully committed, else the index to refresh state to."""
        if plan.is_no_op():
            return 0
        built = plan.build(snapshot_index)
        result = await self.planner.submit_plan(built)
        full, expected, actual = result.full_commit(built)
        if full:
            return 0
        logger.debug(
            "plan partially committed eval_id=%s expected=%d actual=%d",
            plan.eval_id,
            expected,
            actual,
        )
        return max(result.refresh_index, result.alloc_index, snapshot_index, 1)

    async def process(self, evaluation: Evaluation) -> None:
        result = Attempt(done=False)
        for _ in range(self.max_attempts):
            result = await self.attempt(evaluation)
            if result.done:
                break
            self.state = await self.planner.refresh_state(result.refresh_index)
        else:
            desc = f"maximum attempts reached ({self.max_attempts})"
            logger.warning("eval failed eval_id=%s reason=%s", evaluation.id, desc)
            await self.planner.update_eval(
                fast_replace(
                    evaluation,
                    status=EvalStatus.FAILED,
                    status_description=desc,
                    queued_allocations=result.queued,
                    modify_time=self.env.now_ns(),
                )
            )
            return
        await self._finish(evaluation, result)

    async def _finish(self, evaluation: Evaluation, result: Attempt) -> None:
        blocked_id = ""
        if result.failed_tg_allocs and self.creates_blocked_evals:
            if evaluation.status == EvalStatus.BLOCKED:
                await self.planner.reblock_eval(
                    fast_replace(
                        evaluation,
                        class_eligibility=result.class_eligibility,
                        escaped_computed_class=result.escaped,
                        failed_tg_allocs=result.failed_tg_allocs,
                        queued_allocations=result.queued,
                        snapshot_index=result.snapshot_index,
                        deployment_id=result.deployment_id or evaluation.deployment_id,
                        modify_time=self.env.now_ns(),
                    )
                )
                return
            blocked_id = await self._create_blocked(evaluation, result)
        await self.planner.update_eval(
            fast_replace(
                evaluation,
                status=EvalStatus.COMPLETE,
                status_description="",
                blocked_eval=blocked_id or evaluation.blocked_eval,
                failed_tg_allocs=result.failed_tg_allocs,
                queued_allocations=result.queued,
                class_eligibility=result.class_eligibility,
                escaped_computed_class=result.escaped,
                snapshot_index=result.snapshot_index,
                deployment_id=result.deployment_id or evaluation.deployment_id,
                next_eval=result.next_eval or evaluation.next_eval,
                modify_time=self.env.now_ns(),
            )
        )

    async def _create_blocked(self, evaluation: Evaluation, result: Attempt) -> str:
        now = self.env.now_ns()
        job = result.job
        blocked = Evaluation(
            id=self.env.new_id(),
            namespace=evaluation.namespace,
            priority=evaluation.priority,
            type=evaluation.type,
            triggered_by=EvalTrigger.QUEUED_ALLOCS,
            job_id=evaluation.job_id,
            job_modify_index=job.job_modify_index if job else evaluation.job_modify_index,
            status=EvalStatus.BLOCKED,
            status_description=BLOCKED_EVAL_DESCRIPTION,
            previous_eval=evaluation.id,
            failed_tg_allocs=result.failed_tg_allocs,
            class_eligibility=result.class_eligibility,
            escaped_computed_class=result.escaped,
            queued_allocations=result.queued,
            snapshot_index=result.snapshot_index,
            create_time=now,
            modify_time=now,
        )
        await self.planner.create_eval(blocked)
        logger.debug("blocked eval created eval_id=%s blocked=%s", evaluation.id, blocked.id)
        return blocked.id
