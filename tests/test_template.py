"""template.yaml: cfn-lint clean (errors and warnings), plus the rules cfn-lint does not check."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

cfnlint_api = pytest.importorskip("cfnlint.api")
cfnlint_decode = pytest.importorskip("cfnlint.decode")

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"

ROUTES = {
    ("POST", "/agents/{agent}/messages"),
    ("GET", "/agents"),
    ("GET", "/agents/{agent}"),
    ("GET", "/agents/{agent}/rooms/{roomId}/messages"),
    ("POST", "/agents/{agent}/memories/search"),
    ("GET", "/health"),
    ("GET", "/agents/{agent}/tasks"),
    ("POST", "/agents/{agent}/tasks"),
}
QUEUES = ("EmbeddingsHighQueue", "EmbeddingsNormalQueue", "EmbeddingsLowQueue")
FOURTEEN_DAYS = 14 * 24 * 3600


def _lint(path: Path) -> list:
    # Default configuration: errors and warnings (informational checks are off).
    return cfnlint_api.lint_file(path)


def _format(matches: list) -> str:
    return "\n".join(f"{m.rule.id} {m.message} ({m.filename}:{m.linenumber})" for m in matches)


@pytest.fixture(scope="module")
def template() -> dict:
    tpl, matches = cfnlint_decode.decode(str(TEMPLATE))
    assert not matches, _format(matches)
    return tpl


@pytest.fixture(scope="module")
def resources(template) -> dict:
    return template["Resources"]


def _default(template, name):
    return template["Parameters"][name]["Default"]


def test_cfn_lint_has_no_errors_or_warnings():
    matches = _lint(TEMPLATE)
    assert not matches, "cfn-lint findings:\n" + _format(matches)


def test_cfn_lint_really_runs(tmp_path):
    # Guard against a vacuous pass: a broken copy must produce findings.
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace("Runtime: python3.12", "Runtime: python2.7"))
    assert _lint(broken), "cfn-lint found nothing in a template with a removed runtime"


def test_globals(template):
    fn = template["Globals"]["Function"]
    assert fn["Runtime"] == "python3.12"
    assert fn["Architectures"] == ["arm64"]
    env = fn["Environment"]["Variables"]
    for key in (
        "POWERTOOLS_LOG_LEVEL",
        "POWERTOOLS_METRICS_NAMESPACE",
        "DATABASE_SECRET_ARN",
        "DATABASE_HOST",
        "DATABASE_NAME",
        "EMBEDDING_DIMENSION",
        "EMBEDDINGS_HIGH_QUEUE_URL",
        "EMBEDDINGS_NORMAL_QUEUE_URL",
        "EMBEDDINGS_LOW_QUEUE_URL",
    ):
        assert key in env, key
    assert env["SKIP_MIGRATIONS"] == "true"
    assert env["EMBEDDINGS_HIGH_QUEUE_URL"] == {"Ref": "EmbeddingsHighQueue"}
    assert env["EMBEDDINGS_NORMAL_QUEUE_URL"] == {"Ref": "EmbeddingsNormalQueue"}
    assert env["EMBEDDINGS_LOW_QUEUE_URL"] == {"Ref": "EmbeddingsLowQueue"}
    assert _default(template, "EmbeddingDimension") == 384


def test_messages_timeout_fits_http_api_limit(template):
    param = template["Parameters"]["MessagesTimeout"]
    assert param["MaxValue"] <= 29
    assert param["Default"] <= param["MaxValue"]


def test_queues_have_dead_letter_redrive(resources):
    for name in QUEUES:
        props = resources[name]["Properties"]
        dlq = name.replace("Queue", "DeadLetterQueue")
        redrive = props["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq, "Arn"]}, name
        assert redrive["maxReceiveCount"] == 5, name
        assert props["SqsManagedSseEnabled"] is True, name
        dlq_props = resources[dlq]["Properties"]
        assert resources[dlq]["Type"] == "AWS::SQS::Queue"
        assert dlq_props["MessageRetentionPeriod"] == FOURTEEN_DAYS, dlq
        assert dlq_props["SqsManagedSseEnabled"] is True, dlq


def test_visibility_timeout_is_six_times_function_timeout(template, resources):
    for name in QUEUES:
        assert resources[name]["Properties"]["VisibilityTimeout"] == {
            "Ref": "EmbeddingsQueueVisibilityTimeout"
        }, name
    assert resources["EmbeddingsFunction"]["Properties"]["Timeout"] == {"Ref": "EmbeddingsTimeout"}
    visibility = _default(template, "EmbeddingsQueueVisibilityTimeout")
    assert visibility >= 6 * _default(template, "EmbeddingsTimeout")


def test_embeddings_event_sources(resources):
    events = resources["EmbeddingsFunction"]["Properties"]["Events"]
    sqs = [e["Properties"] for e in events.values() if e["Type"] == "SQS"]
    queues = sorted(p["Queue"]["Fn::GetAtt"][0] for p in sqs)
    assert queues == sorted(QUEUES)
    for props in sqs:
        queue = props["Queue"]["Fn::GetAtt"][0]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"], queue
        # Rules cfn-lint does not check (the API rejects them at deploy time):
        if props["BatchSize"] > 10:
            assert props.get("MaximumBatchingWindowInSeconds", 0) >= 1, queue
        assert 2 <= props["ScalingConfig"]["MaximumConcurrency"] <= 1000, queue
    batch = {p["Queue"]["Fn::GetAtt"][0]: p["BatchSize"] for p in sqs}
    assert batch == {"EmbeddingsHighQueue": 10, "EmbeddingsNormalQueue": 25, "EmbeddingsLowQueue": 100}


def test_http_api_routes(resources):
    assert resources["HttpApi"]["Type"] == "AWS::Serverless::HttpApi"
    fn = resources["MessagesFunction"]["Properties"]
    assert fn["Handler"] == "functions.messages.handler"
    routes = set()
    for event in fn["Events"].values():
        assert event["Type"] == "HttpApi"
        props = event["Properties"]
        assert props["ApiId"] == {"Ref": "HttpApi"}
        assert props["PayloadFormatVersion"] == "2.0"
        routes.add((props["Method"], props["Path"]))
    assert routes == ROUTES


def test_messages_function_policies(resources):
    policies = resources["MessagesFunction"]["Properties"]["Policies"]
    send_to = {
        p["SQSSendMessagePolicy"]["QueueName"]["Fn::GetAtt"][0]
        for p in policies
        if "SQSSendMessagePolicy" in p
    }
    assert send_to == {"EmbeddingsHighQueue", "EmbeddingsNormalQueue"}
    for fn in ("MessagesFunction", "EmbeddingsFunction"):
        props = resources[fn]["Properties"]
        secret_policy = {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "DatabaseSecretArn"}}}
        assert secret_policy in props["Policies"], fn
        assert props["VpcConfig"] == {
            "SubnetIds": {"Ref": "SubnetIds"},
            "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
        }, fn


def test_outputs(template):
    assert {
        "ApiUrl",
        "EmbeddingsHighQueueUrl",
        "EmbeddingsNormalQueueUrl",
        "EmbeddingsLowQueueUrl",
        "MessagesFunctionName",
        "EmbeddingsFunctionName",
    } <= set(template["Outputs"])


def test_migrate_function_and_custom_resource(template, resources):
    fn = resources["MigrateFunction"]
    assert fn["Type"] == "AWS::Serverless::Function"
    props = fn["Properties"]
    assert props["Handler"] == "functions.migrate.handler"
    assert props["Timeout"] == 300
    assert props["VpcConfig"] == {"SubnetIds": {"Ref": "SubnetIds"}, "SecurityGroupIds": {"Ref": "SecurityGroupIds"}}
    assert {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "DatabaseSecretArn"}}} in props["Policies"]

    custom = resources["SchemaMigrations"]
    assert custom["Type"] == "Custom::Migrations"
    assert custom["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["MigrateFunction", "Arn"]}
    # A new SchemaVersion changes the resource's properties, so the deploy re-runs the migrations.
    assert custom["Properties"]["SchemaVersion"] == {"Ref": "SchemaVersion"}
    assert template["Parameters"]["SchemaVersion"]["Type"] == "String"
    # CloudFormation gives up waiting soon after the function's own timeout (default: one hour).
    assert props["Timeout"] < custom["Properties"]["ServiceTimeout"] <= 3600


def test_migrations_run_before_traffic(resources):
    for name in ("HttpApi", "MessagesFunction", "EmbeddingsFunction"):
        depends = resources[name].get("DependsOn", [])
        assert "SchemaMigrations" in ([depends] if isinstance(depends, str) else depends), name
    assert "DependsOn" not in resources["MigrateFunction"]


# -- the tasks function and its schedule -------------------------------------------------------

SCHEDULE_SAMPLE = Path(__file__).resolve().parent / "events" / "rust.example-eventbridge-schedule.json"


def _tick(resources) -> dict:
    [(name, event)] = resources["TasksFunction"]["Properties"]["Events"].items()
    assert event["Type"] == "ScheduleV2", name
    return event["Properties"]


def test_tasks_function(template, resources):
    fn = resources["TasksFunction"]
    assert fn["Type"] == "AWS::Serverless::Function" and fn["DependsOn"] == "SchemaMigrations"
    props = fn["Properties"]
    assert props["Handler"] == "functions.tasks.handler"
    assert props["Timeout"] == {"Ref": "TasksTimeout"}
    assert props["VpcConfig"] == {"SubnetIds": {"Ref": "SubnetIds"}, "SecurityGroupIds": {"Ref": "SecurityGroupIds"}}
    env = props["Environment"]["Variables"]
    assert env["TASK_TIMEOUT_S"] == {"Ref": "TaskTimeout"}
    # One connection per concurrent task plus the runner's own.
    assert int(env["DB_POOL_MAX_SIZE"]) == int(env["TASK_CONCURRENCY"]) + 1
    # A task's timeout plus the runner's reserve (TASK_TIME_RESERVE_S, 10 s) must fit in the function's.
    assert _default(template, "TaskTimeout") + 10 < _default(template, "TasksTimeout")
    assert template["Parameters"]["TaskTimeout"]["MaxValue"] + 10 < template["Parameters"]["TasksTimeout"]["MaxValue"]
    # Async invocations: no Lambda retries of a run (the next tick is the retry).
    assert props["EventInvokeConfig"]["MaximumRetryAttempts"] == 0


def test_tasks_function_least_privilege(resources):
    policies = resources["TasksFunction"]["Properties"]["Policies"]
    assert policies == [
        {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["EmbeddingsNormalQueue", "QueueName"]}}},
        {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "DatabaseSecretArn"}}},
    ]


def test_tasks_schedule(template, resources):
    tick = _tick(resources)
    assert tick["ScheduleExpression"] == {"Ref": "TasksScheduleRate"}
    assert tick["OmitName"] is True
    rate = template["Parameters"]["TasksScheduleRate"]
    pattern = re.compile(rate["AllowedPattern"])
    assert pattern.match(rate["Default"]) and rate["Default"] == "rate(1 minute)"
    for good in ("rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(12 hours)", "rate(1 day)"):
        assert pattern.match(good), good
    for bad in ("rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "cron(* * * * ? *)", "rate(1 second)"):
        assert not pattern.match(bad), bad
    # Rules cfn-lint does not check here (it does not expand SAM events): Scheduler's retry policy bounds.
    retry = tick["RetryPolicy"]
    assert 0 <= retry["MaximumRetryAttempts"] <= 185
    assert 60 <= retry["MaximumEventAgeInSeconds"] <= 86400


def test_tasks_schedule_dead_letter_queue(resources):
    assert _tick(resources)["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["TasksScheduleDeadLetterQueue", "Arn"]}}
    dlq = resources["TasksScheduleDeadLetterQueue"]
    assert dlq["Type"] == "AWS::SQS::Queue"
    assert dlq["Properties"]["MessageRetentionPeriod"] == FOURTEEN_DAYS
    assert dlq["Properties"]["SqsManagedSseEnabled"] is True


def test_tasks_schedule_input_is_a_scheduled_event(resources):
    """The handler gets the same shape from Scheduler as from the sample (and the local scheduler)."""
    text = _tick(resources)["Input"]["Fn::Sub"]
    resolved = text.replace("${AWS::AccountId}", "123456789012").replace("${AWS::Region}", "us-east-1")
    event = json.loads(resolved)
    sample = json.loads(SCHEDULE_SAMPLE.read_text())
    assert set(event) == set(sample)
    assert {k: type(v) for k, v in event.items()} == {k: type(v) for k, v in sample.items()}
    assert event["detail-type"] == "Scheduled Event"
    # Only Scheduler's documented context attributes are used.
    assert set(re.findall(r"<aws\.scheduler\.[a-z-]+>", text)) == {
        "<aws.scheduler.execution-id>", "<aws.scheduler.scheduled-time>", "<aws.scheduler.schedule-arn>"}


def test_tasks_outputs(template):
    assert {"TasksFunctionName", "TasksScheduleDeadLetterQueueUrl"} <= set(template["Outputs"])


# -- packaging: `sam build` runs the Makefile's build-<LogicalId> targets ----------------------

ROOT = TEMPLATE.parent
FUNCTIONS = ("MessagesFunction", "EmbeddingsFunction", "TasksFunction", "MigrateFunction")


def test_every_function_is_built_by_the_makefile(resources):
    functions = {name for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert functions == set(FUNCTIONS)
    for name in FUNCTIONS:
        assert resources[name]["Properties"]["CodeUri"] == ".", name
        metadata = resources[name]["Metadata"]
        assert metadata == {"BuildMethod": "makefile"}, name


@pytest.mark.parametrize("function", FUNCTIONS)
def test_makefile_build_target_runs_the_packager(function, tmp_path):
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    artifacts = tmp_path / "artifacts dir"
    dry_run = subprocess.run(
        [make, "--no-print-directory", "-n", f"build-{function}", f"ARTIFACTS_DIR={artifacts}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    assert dry_run.stdout.strip() == f'python3 -m infra.package "{artifacts}"'


# -- HTTP API: authentication on by default, CORS, throttling, access logs ---------------------


def test_http_api_requires_a_jwt_by_default(template, resources):
    auth = resources["HttpApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "Jwt"
    jwt = auth["Authorizers"]["Jwt"]
    assert jwt["IdentitySource"] == "$request.header.Authorization"
    assert jwt["JwtConfiguration"] == {"issuer": {"Ref": "JwtIssuer"}, "audience": [{"Ref": "JwtAudience"}]}
    # AWS_IAM is defined too, so switching to it is the one-word change the parameter documents.
    assert auth["EnableIamAuthorizer"] is True
    assert "AWS_IAM" in template["Parameters"]["JwtIssuer"]["Description"]
    # No default: a deploy must name the identity provider.
    for name in ("JwtIssuer", "JwtAudience"):
        assert "Default" not in template["Parameters"][name], name
    issuer = re.compile(template["Parameters"]["JwtIssuer"]["AllowedPattern"])
    assert issuer.match("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc")
    assert not issuer.match("http://insecure.example.com")


def test_only_health_is_public(resources):
    for name, event in resources["MessagesFunction"]["Properties"]["Events"].items():
        auth = event["Properties"].get("Auth")
        if event["Properties"]["Path"] == "/health":
            assert auth == {"Authorizer": "NONE"}, name
        else:
            assert auth is None, name  # the API's DefaultAuthorizer applies


def test_http_api_cors_is_opt_in(template, resources):
    cors = resources["HttpApi"]["Properties"]["CorsConfiguration"]
    condition, when_set, when_empty = cors["Fn::If"]
    assert condition == "HasCorsOrigins"
    assert when_empty == {"Ref": "AWS::NoValue"}
    assert when_set["AllowOrigins"] == {"Fn::Split": [",", {"Ref": "CorsAllowedOrigins"}]}
    assert "*" not in when_set["AllowOrigins"]
    assert "authorization" in when_set["AllowHeaders"]
    assert template["Conditions"]["HasCorsOrigins"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CorsAllowedOrigins"}, ""]}]}
    param = template["Parameters"]["CorsAllowedOrigins"]
    pattern = re.compile(param["AllowedPattern"])
    assert param["Default"] == "" and pattern.match("")
    for good in ("https://app.example.com", "https://a.example.com,http://localhost:3000"):
        assert pattern.match(good), good
    for bad in ("*", "app.example.com", "https://a.example.com, https://b.example.com", "https://a,"):
        assert not pattern.match(bad), bad


def test_http_api_throttling(template, resources):
    settings = resources["HttpApi"]["Properties"]["DefaultRouteSettings"]
    assert settings == {
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
    }
    for name in ("ApiThrottlingBurstLimit", "ApiThrottlingRateLimit"):
        param = template["Parameters"][name]
        assert param["MinValue"] <= param["Default"] <= param["MaxValue"], name


def test_http_api_access_logs(template, resources):
    logs = resources["HttpApi"]["Properties"]["AccessLogSettings"]
    assert logs["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogs", "Arn"]}
    group = resources["HttpApiAccessLogs"]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "AccessLogRetentionDays"}
    assert _default(template, "AccessLogRetentionDays") in template["Parameters"]["AccessLogRetentionDays"][
        "AllowedValues"]
    # API Gateway substitutes $context variables inside the JSON strings: the format is valid JSON as written.
    line = json.loads(logs["Format"])
    assert {"requestId", "status", "latency", "routeKey"} <= set(line)
    assert line["requestId"] == "$context.requestId"
    assert all(re.fullmatch(r"\$context\.[A-Za-z.]+", value) for value in line.values()), line


# -- database credentials: only the secret's ARN and the endpoint reach the functions ----------


def test_database_credentials_come_from_the_secret(template, resources):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["DATABASE_SECRET_ARN"] == {"Ref": "DatabaseSecretArn"}
    assert env["DATABASE_HOST"] == {"Ref": "DatabaseHost"}
    assert env["DATABASE_NAME"] == {"Ref": "DatabaseName"}
    for name in FUNCTIONS:
        own = resources[name]["Properties"].get("Environment", {}).get("Variables", {})
        for key in {**env, **own}:
            assert not re.search(r"PASSWORD|DATABASE_URL|DSN", key), (name, key)


def test_each_function_reads_only_its_secret(resources):
    for name in FUNCTIONS:
        policies = resources[name]["Properties"]["Policies"]
        secret = [p for p in policies if "AWSSecretsManagerGetSecretValuePolicy" in p]
        # The SAM policy template grants secretsmanager:GetSecretValue on SecretArn, nothing else.
        assert secret == [{"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "DatabaseSecretArn"}}}], name
        assert "secretsmanager" not in json.dumps([p for p in policies if p not in secret]).lower(), name
