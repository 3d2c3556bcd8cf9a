"""Each check of a workflow or specification, asserted with its line, column and JSON path."""

from __future__ import annotations

import pytest

from specs.errors import Problem
from tests.specs.helpers import SPEC, only, problems, workflow_text


def test_valid_workflow_has_no_problems() -> None:
    text = workflow_text(
        """
        - id: a
          uses: noop
        - id: b
          uses: noop
          needs: [a]
          with: {output: "${{ tasks.a.output }} ${{ params.day }}"}
        """
    )
    assert problems(text) == []


def test_unknown_top_level_key_suggests_close_match() -> None:
    text = workflow_text("- {id: a, uses: noop}", header="taks: []\n")
    problem = only(problems(text), "unknown key 'taks'")
    assert problem.message == "unknown key 'taks'; did you mean 'tasks'?"
    assert (problem.line, problem.col, problem.json_path) == (14, 1, "$.taks")


def test_unknown_task_key_suggests_close_match() -> None:
    text = workflow_text(
        """
        - id: a
          uses: noop
          neds: [b]
        """
    )
    problem = only(problems(text), "unknown key 'neds'")
    assert "did you mean 'needs'?" in problem.message
    assert (problem.line, problem.json_path) == (17, "$.tasks[0].neds")


def test_wrong_type_and_range_are_located() -> None:
    text = workflow_text("- {id: a, uses: noop}", header="defaults: {retries: -1, timeout_seconds: soon}\n")
    found = problems(text)
    retries = only(found, "greater than or equal to 0")
    assert (retries.line, retries.json_path) == (14, "$.defaults.retries")
    timeout = only(found, "valid number")
    assert timeout.json_path == "$.defaults.timeout_seconds"
    assert "soon" in timeout.message


def test_missing_required_key_points_at_parent() -> None:
    text = workflow_text("- {id: a}")
    problem = only(problems(text), "missing required key 'uses'")
    assert (problem.line, problem.json_path) == (15, "$.tasks[0].uses")


def test_duplicate_task_ids() -> None:
    text = workflow_text(
        """
        - {id: a, uses: noop}
        - {id: a, uses: noop}
        """
    )
    problem = only(problems(text), "duplicate task id 'a'")
    assert (problem.line, problem.json_path) == (16, "$.tasks[1].id")


def test_needs_unknown_task_suggests() -> None:
    text = workflow_text(
        """
        - {id: extract, uses: noop}
        - {id: load, uses: noop, needs: [extrct]}
        """
    )
    problem = only(problems(text), "unknown task 'extrct'")
    assert "did you mean 'extract'?" in problem.message
    assert (problem.line, problem.json_path) == (16, "$.tasks[1].needs[0]")


@pytest.mark.parametrize(
    ("tasks", "message", "json_path"),
    [
        pytest.param(
            "- {id: a, uses: noop, needs: [a]}", "needs itself", "$.tasks[0].needs[0]", id="needs-itself"
        ),
        pytest.param(
            "- {id: a, uses: sleep}",
            "missing required input 'seconds'",
            "$.tasks[0].with.seconds",
            id="missing-action-input",
        ),
        pytest.param(
            """
            - {id: a, uses: noop}
            - {id: b, uses: noop, needs: [a], with: {output: "${{ tasks.a.result }}"}}
            """,
            "exposes only",
            "$.tasks[1].with.output",
            id="task-read-not-through-output",
        ),
        pytest.param(
            "- {id: a, uses: noop, with: {output: '${{ item }}'}}",
            "'item' is only defined",
            "$.tasks[0].with.output",
            id="item-outside-for-each",
        ),
    ],
)
def test_a_task_problem_is_located(tasks: str, message: str, json_path: str) -> None:
    assert only(problems(workflow_text(tasks)), message).json_path == json_path


def test_cycle_prints_its_path() -> None:
    text = workflow_text(
        """
        - {id: a, uses: noop, needs: [c]}
        - {id: b, uses: noop, needs: [a]}
        - {id: c, uses: noop, needs: [b]}
        """
    )
    problem = only(problems(text), "dependency cycle")
    assert "a -> c -> b -> a" in problem.message
    assert (problem.line, problem.json_path) == (15, "$.tasks[0].needs")


def test_two_separate_cycles_are_both_reported() -> None:
    text = workflow_text(
        """
        - {id: a, uses: noop, needs: [b]}
        - {id: b, uses: noop, needs: [a]}
        - {id: c, uses: noop, needs: [d]}
        - {id: d, uses: noop, needs: [c]}
        """
    )
    cycles = [p for p in problems(text) if "dependency cycle" in p.message]
    assert [p.json_path for p in cycles] == ["$.tasks[0].needs", "$.tasks[2].needs"]


def test_unknown_action_suggests() -> None:
    text = workflow_text("- {id: a, uses: pyhton}")
    problem = only(problems(text), "unknown action 'pyhton'")
    assert "did you mean 'python'?" in problem.message
    assert problem.json_path == "$.tasks[0].uses"


def test_invalid_action_inputs_all_reported() -> None:
    text = workflow_text(
        """
        - id: fetch
          uses: http
          with:
            url: ftp://example.com
            methd: GET
            timeout_seconds: -1
        """
    )
    found = problems(text)
    url = only(found, "invalid url")
    assert (url.line, url.json_path) == (18, "$.tasks[0].with.url")
    extra = only(found, "unknown input 'methd'")
    assert "did you mean 'method'?" in extra.message
    assert (extra.line, extra.col) == (19, 7)
    timeout = only(found, "greater than 0")
    assert timeout.json_path == "$.tasks[0].with.timeout_seconds"


def test_expression_values_skip_input_type_checks() -> None:
    text = workflow_text(
        """
        - id: wait
          uses: sleep
          with: {seconds: "${{ params.limit }}"}
        """
    )
    assert problems(text) == []


def test_expression_syntax_error() -> None:
    text = workflow_text(
        """
        - id: a
          uses: noop
          with: {output: "${{ params.day + }}"}
        """
    )
    problem = only(problems(text), "invalid expression")
    assert (problem.line, problem.json_path) == (17, "$.tasks[0].with.output")


def test_unclosed_expression() -> None:
    text = workflow_text("- {id: a, uses: noop, with: {output: '${{ params.day'}}")
    assert "unclosed" in only(problems(text), "unclosed").message


def test_reading_a_task_that_is_not_upstream() -> None:
    text = workflow_text(
        """
        - {id: a, uses: noop}
        - {id: b, uses: noop}
        - id: c
          uses: noop
          needs: [b]
          with: {output: "${{ tasks.a.output }}"}
        """
    )
    problem = only(problems(text), "not upstream")
    assert "'a' is not upstream of 'c'" in problem.message
    assert (problem.line, problem.json_path) == (20, "$.tasks[2].with.output")


def test_reading_an_indirect_upstream_is_fine() -> None:
    text = workflow_text(
        """
        - {id: a, uses: noop}
        - {id: b, uses: noop, needs: [a]}
        - {id: c, uses: noop, needs: [b], with: {output: "${{ tasks.a.output }}"}}
        """
    )
    assert problems(text) == []


def test_reading_an_unknown_task_and_own_output() -> None:
    text = workflow_text(
        """
        - {id: a, uses: noop, with: {output: "${{ tasks.a.output }}"}}
        - {id: b, uses: noop, needs: [a], with: {output: "${{ tasks.aa.output }}"}}
        """
    )
    found = problems(text)
    assert only(found, "reads its own output").json_path == "$.tasks[0].with.output"
    assert only(found, "there is no task 'aa'").json_path == "$.tasks[1].with.output"


def test_item_inside_for_each_is_fine_but_not_in_if() -> None:
    text = workflow_text(
        """
        - id: a
          uses: noop
          for_each: [1, 2]
          if: "${{ item }}"
          with: {output: "${{ item }}"}
        """
    )
    problem = only(problems(text), "'item' is only defined")
    assert problem.json_path == "$.tasks[0].if"


def test_undeclared_parameter_suggests() -> None:
    text = workflow_text("- {id: a, uses: noop, with: {output: '${{ params.dya }}'}}")
    problem = only(problems(text), "unknown parameter 'dya'")
    assert "demo@1.0.0" in problem.message
    assert "did you mean 'day'?" in problem.message


def test_a_spec_that_accepts_undeclared_parameters_lets_tasks_read_them() -> None:
    text = workflow_text("- {id: a, uses: noop, with: {output: '${{ params.region }}'}}")
    open_spec = text.replace(
        "    limit: {type: integer, default: 10}\n",
        "    limit: {type: integer, default: 10}\n  additionalProperties: true\n",
        1,
    )

    assert open_spec != text
    assert problems(open_spec) == []


def test_unknown_names_and_run_fields() -> None:
    text = workflow_text(
        """
        - {id: a, uses: noop, with: {output: "${{ env.token }}"}}
        - {id: b, uses: noop, with: {output: "${{ run.nope }}"}}
        """
    )
    found = problems(text)
    unknown = only(found, "unknown name 'env'")
    assert unknown.json_path == "$.tasks[0].with.output"
    assert unknown.message.endswith("expressions can read params, tasks, item, run and secrets")
    assert only(found, "run has no field 'nope'").json_path == "$.tasks[1].with.output"


def test_if_and_for_each_accept_bare_expressions() -> None:
    text = workflow_text(
        """
        - {id: a, uses: noop}
        - {id: b, uses: noop, needs: [a], if: "tasks.a.output is none", for_each: "params.day.split('-')"}
        """
    )
    assert problems(text) == []


def test_invalid_cron_timezone_and_rrule() -> None:
    header = "schedule: {cron: '61 * * * *', timezone: Europe/Pariss}\n"
    found = problems(workflow_text("- {id: a, uses: noop}", header=header))
    assert only(found, "invalid cron").json_path == "$.schedule.cron"
    zone = only(found, "unknown timezone")
    assert "did you mean 'Europe/Paris'?" in zone.message
    assert zone.line == 14
    rrule = problems(workflow_text("- {id: a, uses: noop}", header="schedule: {rrule: 'FREQ=SOMETIMES'}\n"))
    assert only(rrule, "invalid rrule").json_path == "$.schedule.rrule"


def test_schedule_needs_exactly_one_kind() -> None:
    header = "schedule: {cron: '* * * * *', interval_seconds: 60}\n"
    problem = only(problems(workflow_text("- {id: a, uses: noop}", header=header)), "exactly one")
    assert problem.json_path == "$.schedule"


def test_interval_must_be_positive() -> None:
    header = "schedule: {interval_seconds: 0}\n"
    problem = only(problems(workflow_text("- {id: a, uses: noop}", header=header)), "greater than 0")
    assert problem.json_path == "$.schedule.interval_seconds"


def test_invalid_semver_and_range() -> None:
    text = workflow_text("- {id: a, uses: noop}", spec_range="^^1").replace(
        "version: 1.0.0\nspec", "version: 1.0\nspec"
    )
    found = problems(text)
    assert only(found, "invalid semantic version").json_path == "$.version"
    assert only(found, "in range '^^1'").json_path == "$.spec.version"


def test_spec_range_not_satisfied_in_same_text() -> None:
    found = problems(workflow_text("- {id: a, uses: noop}", spec_range="^2.0.0"))
    problem = only(found, "no specification 'demo' satisfies")
    assert "(given: 1.0.0)" in problem.message
    assert problem.json_path == "$.spec.version"


def test_invalid_parameters_schema() -> None:
    text = SPEC.replace("{type: integer, default: 10}", "{type: integr}")
    problem = only(problems(text), "not a valid JSON Schema")
    assert (problem.line, problem.json_path) == (8, "$.parameters.properties.limit.type")


def test_parameter_default_must_match_its_schema() -> None:
    text = SPEC.replace("default: 10", "default: ten")
    problem = only(problems(text), "default of 'limit' is invalid")
    assert problem.json_path == "$.parameters.properties.limit.default"


def test_remote_schema_references_are_refused() -> None:
    text = SPEC.replace("{type: string}", "{$ref: 'https://example.com/day.json'}")
    assert only(problems(text), "only local references").json_path == '$.parameters.properties.day["$ref"]'


def test_duplicate_requirement_ids() -> None:
    text = SPEC + "requirements:\n  - {id: R1, text: a}\n  - {id: R1, text: b}\n"
    assert only(problems(text), "duplicate requirement id").json_path == "$.requirements[1].id"


def test_many_problems_in_one_document_are_all_reported() -> None:
    text = workflow_text(
        """
        - {id: a, uses: nop}
        - {id: b, uses: noop, needs: [zz]}
        - {id: c, uses: sleep, with: {seconds: -1}}
        - {id: d, uses: noop, with: {output: "${{ item }}"}}
        """
    )
    paths = {p.json_path for p in problems(text)}
    assert {
        "$.tasks[0].uses",
        "$.tasks[1].needs[0]",
        "$.tasks[2].with.seconds",
        "$.tasks[3].with.output",
    } <= paths


def test_one_invalid_task_does_not_hide_checks_on_the_others() -> None:
    text = workflow_text(
        """
        - {id: a, uses: noop, retries: many}
        - {id: b, uses: noop, needs: [nothere]}
        """
    )
    found = problems(text)
    assert only(found, "valid integer").json_path == "$.tasks[0].retries"
    assert only(found, "unknown task 'nothere'").json_path == "$.tasks[1].needs[0]"


def test_bad_document_does_not_hide_problems_in_others() -> None:
    text = "kind: Specification\nname: Bad Name\nversion: 1.0.0\n---\n" + workflow_text(
        "- {id: a, uses: noop, needs: [b]}"
    )
    found = problems(text)
    assert only(found, "invalid name 'Bad Name'").line == 2
    assert only(found, "unknown task 'b'").line == 19


def test_workflow_running_itself_is_refused() -> None:
    text = workflow_text("- {id: a, uses: workflow, with: {name: demo}}")
    assert only(problems(text), "runs itself").json_path == "$.tasks[0].with.name"


def test_workflows_calling_each_other_in_a_cycle() -> None:
    other = (
        "---\nkind: Workflow\nname: other\nversion: 1.0.0\nspec: {name: demo, version: ^1.0.0}\n"
        "tasks:\n  - {id: back, uses: workflow, with: {name: demo}}\n"
    )
    text = workflow_text("- {id: call, uses: workflow, with: {name: other}}") + other
    problem = only(problems(text), "call each other")
    assert "demo -> other -> demo" in problem.message


def test_child_workflow_version_must_match_a_given_child() -> None:
    text = workflow_text("- {id: call, uses: workflow, with: {name: demo, version: ^2.0.0}}").replace(
        "name: demo\nversion: 1.0.0\nspec", "name: parent\nversion: 1.0.0\nspec"
    )
    text += "---\nkind: Workflow\nname: demo\nversion: 1.0.0\nspec: {name: demo, version: ^1.0.0}\n"
    text += "tasks:\n  - {id: x, uses: noop}\n"
    assert only(problems(text), "no given workflow 'demo' satisfies").json_path == "$.tasks[0].with.version"


def test_unknown_kind_suggests() -> None:
    problem = only(problems("kind: Workflw\nname: x\n"), "unknown kind")
    assert "did you mean 'Workflow'?" in problem.message
    assert (problem.line, problem.json_path) == (1, "$.kind")


def test_document_must_be_a_mapping_with_kind() -> None:
    found = problems("- a\n- b\n---\nname: x\n")
    assert only(found, "must be a mapping").line == 1
    assert only(found, "missing 'kind'").line == 4


@pytest.mark.parametrize(
    "runner",
    [
        "{type: dask, workers: 4}",
        "{type: dask, address: 'tcp://127.0.0.1:8786'}",
        "{type: dask, address: 'tcp://dask-scheduler.internal:8786'}",
        "{type: dask, address: 'tcp://[::1]:8786'}",
    ],
)
def test_dask_task_runner_is_accepted(runner: str) -> None:
    assert problems(workflow_text("- {id: a, uses: noop}", header=f"task_runner: {runner}\n")) == []


def _runner_problems(runner: str) -> list[Problem]:
    return problems(workflow_text("- {id: a, uses: noop}", header=f"task_runner: {runner}\n"))


# runner -> (JSON path, part of the one message)
BAD_RUNNERS = {
    "{type: thread}": ("$.task_runner.type", "input should be 'dask', got 'thread'"),
    "{workers: 2}": ("$.task_runner.type", "missing required key 'type'"),
    "{type: dask}": ("$.task_runner", "exactly one of 'address' or 'workers'"),
    "{type: dask, workers: 2, address: 'tcp://h:1'}": ("$.task_runner", "exactly one of 'address'"),
    "dask": ("$.task_runner", "expected a mapping, got str"),
}


@pytest.mark.parametrize("runner", list(BAD_RUNNERS))
def test_task_runner_needs_type_dask_and_one_target(runner: str) -> None:
    path, fragment = BAD_RUNNERS[runner]
    found = _runner_problems(runner)
    assert len(found) == 1, [p.format() for p in found]
    assert (only(found, fragment).line, found[0].json_path) == (14, path)


@pytest.mark.parametrize("workers", ["0", "257", "two"])
def test_task_runner_workers_is_a_bounded_count(workers: str) -> None:
    [problem] = _runner_problems(f"{{type: dask, workers: {workers}}}")
    assert problem.json_path == "$.task_runner.workers"
    assert f"got {workers!r}" in problem.message or f"got {workers}" in problem.message


def test_task_runner_unknown_key_suggests_workers() -> None:
    [problem] = _runner_problems("{type: dask, wokers: 2}")
    assert (problem.json_path, problem.message) == (
        "$.task_runner.wokers",
        "unknown key 'wokers'; did you mean 'workers'?",
    )


@pytest.mark.parametrize(
    "address",
    ["http://127.0.0.1:8786", "tcp://h:65536", "tcp://h:0", "tcp://h", "tcp://a b:1", "127.0.0.1:8786"],
)
def test_task_runner_address_must_be_tcp_host_port(address: str) -> None:
    [problem] = _runner_problems(f"{{type: dask, address: '{address}'}}")
    assert problem.json_path == "$.task_runner.address"
    assert problem.message == (
        f"invalid Dask scheduler address {address!r} (expected tcp://host:port, port 1-65535)"
    )
