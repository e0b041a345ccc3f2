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
    ("PUT", "/agents/{agent}"),
    ("PATCH", "/agents/{agent}"),
    ("DELETE", "/agents/{agent}"),
    ("GET", "/agents/{agent}/rooms"),
    ("GET", "/agents/{agent}/rooms/{roomId}/messages"),
    ("POST", "/agents/{agent}/memories/search"),
    ("GET", "/health"),
    ("GET", "/health/details"),
    ("GET", "/agents/{agent}/tasks"),
    ("POST", "/agents/{agent}/tasks"),
    ("POST", "/agents/{agent}/documents"),
    ("GET", "/agents/{agent}/documents"),
    ("GET", "/agents/{agent}/documents/status"),
    ("GET", "/agents/{agent}/documents/{documentId}"),
    ("DELETE", "/agents/{agent}/documents/{documentId}"),
    ("POST", "/agents/{agent}/facts"),
    ("GET", "/agents/{agent}/facts"),
    ("ANY", "/agents/{agent}/plugins/{plugin}/{proxy+}"),
}
QUEUES = ("EmbeddingsHighQueue", "EmbeddingsNormalQueue", "EmbeddingsLowQueue")
FOURTEEN_DAYS = 14 * 24 * 3600
#: The one Bedrock grant: only when BedrockModelArns is set, only invocation, only on those ARNs.
BEDROCK_POLICY = {
    "Fn::If": [
        "HasBedrockModels",
        {
            "Statement": [
                {
                    "Sid": "InvokeConfiguredBedrockModels",
                    "Effect": "Allow",
                    "Action": ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
                    "Resource": {"Ref": "BedrockModelArns"},
                }
            ]
        },
        {"Ref": "AWS::NoValue"},
    ]
}


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
        "MODEL_PLUGINS",
        "BEDROCK_TEXT_MODEL_ID",
        "BEDROCK_EMBEDDING_MODEL_ID",
        "POWERTOOLS_TRACE_DISABLED",
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
        assert resources[name]["Properties"]["VisibilityTimeout"] == {"Ref": "EmbeddingsQueueVisibilityTimeout"}, name
    assert resources["EmbeddingsFunction"]["Properties"]["Timeout"] == {"Ref": "EmbeddingsTimeout"}
    visibility = _default(template, "EmbeddingsQueueVisibilityTimeout")
    assert visibility >= 6 * _default(template, "EmbeddingsTimeout")


def _event_source_mappings(resources) -> dict[str, dict]:
    return {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::Lambda::EventSourceMapping"}


def test_embeddings_event_sources(resources):
    mappings = _event_source_mappings(resources)
    # The logical ids SAM generated for the former `Events` (EmbeddingsFunction + event name): an existing stack
    # updates these mappings in place instead of creating a second mapping of the same queue (a conflict).
    assert {name: props["EventSourceArn"] for name, props in mappings.items()} == {
        "EmbeddingsFunctionHighPriority": {"Fn::GetAtt": ["EmbeddingsHighQueue", "Arn"]},
        "EmbeddingsFunctionNormalPriority": {"Fn::GetAtt": ["EmbeddingsNormalQueue", "Arn"]},
        "EmbeddingsFunctionLowPriority": {"Fn::GetAtt": ["EmbeddingsLowQueue", "Arn"]},
    }
    sqs = list(mappings.values())
    for name, props in mappings.items():
        assert props["FunctionName"] == {"Ref": "EmbeddingsFunction"}, name
    for props in sqs:
        queue = props["EventSourceArn"]["Fn::GetAtt"][0]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"], queue
        # Rules cfn-lint does not check (the API rejects them at deploy time):
        if props["BatchSize"] > 10:
            assert props.get("MaximumBatchingWindowInSeconds", 0) >= 1, queue
        assert 2 <= props["ScalingConfig"]["MaximumConcurrency"] <= 1000, queue
    batch = {p["EventSourceArn"]["Fn::GetAtt"][0]: p["BatchSize"] for p in sqs}
    assert batch == {"EmbeddingsHighQueue": 10, "EmbeddingsNormalQueue": 25, "EmbeddingsLowQueue": 100}


def test_embeddings_function_polls_only_its_queues(resources):
    props = resources["EmbeddingsFunction"]["Properties"]
    # SAM `Events` of type SQS would attach AWSLambdaSQSQueueExecutionRole (sqs:ReceiveMessage... on "*").
    assert "Events" not in props
    polled = [p["SQSPollerPolicy"]["QueueName"] for p in props["Policies"] if "SQSPollerPolicy" in p]
    assert polled == [{"Fn::GetAtt": [q, "QueueName"]} for q in QUEUES]
    # It sends nothing: only the poller (receive, delete, change visibility) on its three queues.
    assert not [p for p in props["Policies"] if "SQSSendMessagePolicy" in p]


def test_http_api_routes(resources):
    assert resources["HttpApi"]["Type"] == "AWS::Serverless::HttpApi"
    fn = resources["MessagesFunction"]["Properties"]
    assert fn["Handler"] == "functions.api.app.handler"
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
    send_to = {p["SQSSendMessagePolicy"]["QueueName"]["Fn::GetAtt"][0] for p in policies if "SQSSendMessagePolicy" in p}
    assert send_to == {"EmbeddingsHighQueue", "EmbeddingsNormalQueue", "EmbeddingsLowQueue"}
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
        "MigrateFunctionName",
        "EmbeddingsHighDeadLetterQueueUrl",
        "EmbeddingsNormalDeadLetterQueueUrl",
        "EmbeddingsLowDeadLetterQueueUrl",
        "StreamUrl",
        "WebUrl",
        "WebBucketName",
        "WebDistributionId",
    } <= set(template["Outputs"])
    outputs = template["Outputs"]
    for queue in QUEUES:
        dlq = queue.replace("Queue", "DeadLetterQueue")
        assert outputs[f"{dlq}Url"]["Value"] == {"Ref": dlq}
        # A redrive names its source by ARN (aws sqs start-message-move-task --source-arn).
        assert outputs[f"{dlq}Arn"]["Value"] == {"Fn::GetAtt": [dlq, "Arn"]}
    # Every alarm's name is an output (Ref of an alarm is its name), so the runbook can find it.
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            assert outputs[f"{name}Name"]["Value"] == {"Ref": name}, name


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
        {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["EmbeddingsLowQueue", "QueueName"]}}},
        {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "DatabaseSecretArn"}}},
        {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "ServerSecret"}}},  # its Container reads it
        BEDROCK_POLICY,  # task workers call models through the runtime
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
        "<aws.scheduler.execution-id>",
        "<aws.scheduler.scheduled-time>",
        "<aws.scheduler.schedule-arn>",
    }


def test_tasks_outputs(template):
    assert {"TasksFunctionName", "TasksScheduleDeadLetterQueueUrl"} <= set(template["Outputs"])


# -- packaging: `sam build` runs the Makefile's build-<LogicalId> targets ----------------------

ROOT = TEMPLATE.parent
FUNCTIONS = ("MessagesFunction", "EmbeddingsFunction", "TasksFunction", "MigrateFunction")
#: The WebSocket $connect authorizer: no database, no secret, no VPC, its own hand-written role (tested below).
AUTHORIZER = "StreamAuthorizerFunction"
BUILT_FUNCTIONS = (*FUNCTIONS, AUTHORIZER)


def test_every_function_is_built_by_the_makefile(resources):
    functions = {name for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert functions == set(BUILT_FUNCTIONS)
    for name in BUILT_FUNCTIONS:
        assert resources[name]["Properties"]["CodeUri"] == ".", name
        metadata = resources[name]["Metadata"]
        assert metadata["BuildMethod"] == "makefile", name
        assert set(metadata) <= {"BuildMethod", "checkov"}, name  # checkov: accepted findings (see below)


@pytest.mark.parametrize("function", BUILT_FUNCTIONS)
def test_makefile_build_target_runs_the_packager(function, tmp_path):
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    artifacts = tmp_path / "artifacts dir"
    dry_run = subprocess.run(
        [make, "--no-print-directory", "-n", f"build-{function}", f"ARTIFACTS_DIR={artifacts}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert dry_run.stdout.strip() == f'python3 -m infra.package "{artifacts}"'


# -- HTTP API: authentication on by default, CORS, throttling, access logs ---------------------


def test_http_api_requires_a_jwt_by_default(template, resources):
    auth = resources["HttpApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "Jwt"
    jwt = auth["Authorizers"]["Jwt"]
    assert jwt["IdentitySource"] == "$request.header.Authorization"
    assert jwt["JwtConfiguration"] == {"issuer": {"Ref": "JwtIssuer"}, "audience": {"Ref": "JwtAudience"}}
    # Several app clients: Cognito cannot give one client both user sign-in and client credentials (connectors).
    audience = template["Parameters"]["JwtAudience"]
    assert audience["Type"] == "CommaDelimitedList"
    for good in ("4mqk2cknsr6b1hq2v1example", "https://api.example.com"):
        assert re.fullmatch(audience["AllowedPattern"], good), good
    for bad in ("", "a b", "a,b"):  # CloudFormation matches each item: an empty one is refused
        assert not re.fullmatch(audience["AllowedPattern"], bad), bad
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
    events = resources["MessagesFunction"]["Properties"]["Events"]
    for name, event in events.items():
        auth = event["Properties"].get("Auth")
        if (event["Properties"]["Method"], event["Properties"]["Path"]) == ("GET", "/health"):
            assert auth == {"Authorizer": "NONE"}, name
        else:
            assert auth is None, name  # the API's DefaultAuthorizer applies
    # The details (versions, agents, circuits) are admin-only: a token first, then the role in the function.
    [details] = [e for e in events.values() if e["Properties"]["Path"] == "/health/details"]
    assert details["Properties"]["Method"] == "GET" and "Auth" not in details["Properties"]


def test_the_deployed_api_asks_a_jwt_of_every_route_but_health(transformed):
    paths = transformed["Resources"]["HttpApi"]["Properties"]["Body"]["paths"]
    security = {(method.upper(), path): op.get("security") for path, ops in paths.items() for method, op in ops.items()}
    assert security.pop(("GET", "/health")) == [{"NONE": []}]
    assert security[("GET", "/health/details")] == [{"Jwt": []}]
    assert {str(value) for value in security.values()} == {str([{"Jwt": []}])}


def test_http_api_cors_is_opt_in(template, resources):
    cors = resources["HttpApi"]["Properties"]["CorsConfiguration"]
    condition, when_set, when_empty = cors["Fn::If"]
    assert condition == "HasCorsOrigins"
    assert when_empty == {"Ref": "AWS::NoValue"}
    assert when_set["AllowOrigins"] == {"Fn::Split": [",", {"Ref": "CorsAllowedOrigins"}]}
    assert "*" not in when_set["AllowOrigins"]
    assert "authorization" in when_set["AllowHeaders"]
    assert template["Conditions"]["HasCorsOrigins"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CorsAllowedOrigins"}, ""]}]
    }
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
    assert (
        _default(template, "AccessLogRetentionDays")
        in template["Parameters"]["AccessLogRetentionDays"]["AllowedValues"]
    )
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


def test_each_function_reads_only_its_secrets(resources):
    database = {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "DatabaseSecretArn"}}}
    server = {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "ServerSecret"}}}
    for name in FUNCTIONS:
        policies = resources[name]["Properties"]["Policies"]
        secret = [p for p in policies if "AWSSecretsManagerGetSecretValuePolicy" in p]
        # The SAM policy template grants secretsmanager:GetSecretValue on SecretArn, nothing else.
        assert secret == ([database, server] if name in CONTAINER_FUNCTIONS else [database]), name
        assert "secretsmanager" not in json.dumps([p for p in policies if p not in secret]).lower(), name


def test_generated_roles_read_exactly_the_two_secrets(transformed):
    """After the transform: GetSecretValue alone, on the database secret's ARN and on the generated one."""
    roles = {name: r["Properties"] for name, r in transformed["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    for name in FUNCTIONS:
        policies = roles[f"{name}Role"].get("Policies", [])
        # The conditional Bedrock policy (Fn::If) holds no secret.
        assert "secretsmanager" not in json.dumps([p for p in policies if "PolicyDocument" not in p]), name
        statements = [
            statement
            for policy in policies
            if "PolicyDocument" in policy
            for statement in policy["PolicyDocument"]["Statement"]
            if "secretsmanager" in json.dumps(statement)
        ]
        expected = [{"Ref": "DatabaseSecretArn"}] + ([{"Ref": "ServerSecret"}] if name in CONTAINER_FUNCTIONS else [])
        assert [s["Resource"]["Fn::Sub"][1]["secretArn"] for s in statements] == expected, name
        for statement in statements:
            assert statement["Effect"] == "Allow" and statement["Action"] == ["secretsmanager:GetSecretValue"], name


# -- the server secret and the identity settings ----------------------------------------------

#: The functions whose handler builds a Container (core.deployment.container), which reads the server secret.
CONTAINER_FUNCTIONS = ("MessagesFunction", "EmbeddingsFunction", "TasksFunction")


def _handler_source(resources, name: str) -> str:
    module = resources[name]["Properties"]["Handler"].rsplit(".", 1)[0]
    return (ROOT / (module.replace(".", "/") + ".py")).read_text()


def test_every_function_that_builds_a_container_gets_the_server_secret(resources):
    for name in FUNCTIONS:
        builds = "build_container(" in _handler_source(resources, name) or "Container(" in _handler_source(
            resources, name
        )
        assert builds == (name in CONTAINER_FUNCTIONS), name
        env = resources[name]["Properties"]["Environment"]["Variables"]
        assert env.get("SERVER_SECRET_ARN") == ({"Ref": "ServerSecret"} if builds else None), name
        assert "SERVER_SECRET" not in env, name  # never the value itself


def test_the_server_secret_is_generated_once_and_kept(template, resources):
    secret = resources["ServerSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    # Rotating or regenerating it moves every DM room and makes sealed character secrets unreadable.
    assert secret["Properties"]["GenerateSecretString"] == {
        "SecretStringTemplate": "{}",
        "GenerateStringKey": "secret",
        "PasswordLength": 64,
        "ExcludePunctuation": True,
    }
    assert secret["DeletionPolicy"] == "Retain" and secret["UpdateReplacePolicy"] == "Retain"
    assert "Name" not in secret["Properties"]  # a generated name: several stacks per account
    assert not [r for r in resources.values() if r["Type"] == "AWS::SecretsManager::RotationSchedule"]
    assert "SERVER_SECRET_ARN" not in template["Globals"]["Function"]["Environment"]["Variables"]
    assert template["Outputs"]["ServerSecretArn"]["Value"] == {"Ref": "ServerSecret"}  # for backups and restores


def test_the_generated_secret_has_the_shape_the_server_reads(resources):
    """A value as GenerateSecretString writes it loads as the 64-character secret (core.server_secret)."""
    import boto3
    from moto import mock_aws

    from core.server_secret import ServerSecret
    from core.settings.identity import IdentitySettings

    spec = resources["ServerSecret"]["Properties"]["GenerateSecretString"]
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        value = client.get_random_password(
            PasswordLength=spec["PasswordLength"], ExcludePunctuation=spec["ExcludePunctuation"]
        )["RandomPassword"]
        document = {**json.loads(spec["SecretStringTemplate"]), spec["GenerateStringKey"]: value}
        arn = client.create_secret(Name="server-secret", SecretString=json.dumps(document))["ARN"]
        loaded = ServerSecret.load(IdentitySettings(server_secret_arn=arn), client)
    assert loaded.key("dm_room") == ServerSecret(value).key("dm_room")
    assert len(value) == 64 and value.isalnum()


AUTH_PARAMETERS = {
    "AuthAdminScope": ("AUTH_ADMIN_SCOPE", "admin_scope"),
    "AuthAdminGroup": ("AUTH_ADMIN_GROUP", "admin_group"),
    "AuthConnectorScopePrefix": ("AUTH_CONNECTOR_SCOPE_PREFIX", "connector_scope_prefix"),
}


def test_identity_settings_are_parameters_with_the_codes_defaults(template, resources):
    from core.settings.identity import IdentitySettings

    defaults = IdentitySettings()
    env = resources["MessagesFunction"]["Properties"]["Environment"]["Variables"]
    for parameter, (variable, field) in AUTH_PARAMETERS.items():
        param = template["Parameters"][parameter]
        assert param["Default"] == getattr(defaults, field), parameter
        assert re.fullmatch(param["AllowedPattern"], param["Default"]), parameter
        assert env[variable] == {"Ref": parameter}, variable
        assert IdentitySettings.from_env({variable: param["Default"]}) == defaults
    # Only the API maps claims to roles: the other functions keep the defaults they never use.
    for name in FUNCTIONS:
        if name != "MessagesFunction":
            assert not {v for v, _ in AUTH_PARAMETERS.values()} & set(
                resources[name]["Properties"]["Environment"]["Variables"]
            )
    scope = re.compile(template["Parameters"]["AuthConnectorScopePrefix"]["AllowedPattern"])
    for good in ("agents/connector.", "https://api.example.com/connector:", "connector-"):
        assert scope.fullmatch(good), good
    for bad in ("", "agents connector.", 'agents/"x', "agents\\x"):
        assert not scope.fullmatch(bad), bad
    group = re.compile(template["Parameters"]["AuthAdminGroup"]["AllowedPattern"])
    assert group.fullmatch("admin") and group.fullmatch("Administrators") and not group.fullmatch("a b")


# -- TLS to the database: verify-full with the RDS CAs shipped in the package ------------------


def test_database_tls_is_verify_full_with_the_shipped_rds_bundle(template, resources):
    from core.settings.db import RDS_CA_BUNDLE, DatabaseSettings

    # No function sets them: the code's defaults apply (verify-full, the bundle inside the package).
    for env in [template["Globals"]["Function"]["Environment"]["Variables"]] + [
        resources[name]["Properties"]["Environment"]["Variables"] for name in FUNCTIONS
    ]:
        assert "DATABASE_SSLMODE" not in env and "DATABASE_SSLROOTCERT" not in env
    settings = DatabaseSettings()
    assert settings.database_sslmode == "verify-full"
    assert Path(settings.database_sslrootcert) == RDS_CA_BUNDLE and RDS_CA_BUNDLE.is_relative_to(ROOT / "core")


def test_the_rds_ca_bundle_is_in_the_lambda_package(tmp_path):
    from core.settings.db import RDS_CA_BUNDLE
    from infra.package import copy_code

    copy_code(tmp_path)  # what `sam build` copies after the wheels
    packaged = tmp_path / RDS_CA_BUNDLE.relative_to(ROOT)
    assert packaged.read_bytes() == RDS_CA_BUNDLE.read_bytes()
    assert packaged.read_text().count("BEGIN CERTIFICATE") > 10


def test_embedding_dimension_is_one_the_schema_stores(template):
    from core.db.adapter import EMBEDDING_DIMENSIONS

    param = template["Parameters"]["EmbeddingDimension"]
    # Settings refuses any other length at start-up: the deploy refuses it first.
    assert tuple(param["AllowedValues"]) == EMBEDDING_DIMENSIONS
    assert param["Default"] in param["AllowedValues"]


# -- alarms: dead-letter queues, the high queue's backlog, the messages function ---------------

DEAD_LETTER_QUEUES = (
    "EmbeddingsHighDeadLetterQueue",
    "EmbeddingsNormalDeadLetterQueue",
    "EmbeddingsLowDeadLetterQueue",
    "TasksScheduleDeadLetterQueue",
)
ALARM_ACTIONS = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


def _alarms(resources) -> dict[str, dict]:
    return {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def _alarms_on(resources, namespace: str, metric: str, dimension: dict) -> list[dict]:
    return [
        a
        for a in _alarms(resources).values()
        if a["Namespace"] == namespace and a["MetricName"] == metric and a["Dimensions"] == [dimension]
    ]


def _dead_letter_queues(resources) -> set[str]:
    """Every queue something dead-letters into: SQS redrive targets and the schedule's DLQ."""
    found = {
        r["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in r["Properties"]
    }
    for r in resources.values():
        for event in r.get("Properties", {}).get("Events", {}).values():
            if "DeadLetterConfig" in event["Properties"]:
                found.add(event["Properties"]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])
    return found


def test_every_dead_letter_queue_is_known(resources):
    assert _dead_letter_queues(resources) == set(DEAD_LETTER_QUEUES)


@pytest.mark.parametrize("dlq", DEAD_LETTER_QUEUES)
def test_dead_letter_queue_alarm(resources, dlq):
    [alarm] = _alarms_on(
        resources,
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}},
    )
    # One message is one too many: > 0 on the maximum of a period.
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["EvaluationPeriods"] == 1
    # SQS stops publishing an untouched queue's metrics: keep ALARM while messages wait there.
    assert alarm["TreatMissingData"] == "ignore"
    assert "docs/deploy.md" in alarm["AlarmDescription"]


def test_high_queue_age_alarm(template, resources):
    [alarm] = _alarms_on(
        resources,
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["EmbeddingsHighQueue", "QueueName"]}},
    )
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Threshold"] == {"Ref": "EmbeddingsHighQueueMaxAgeSeconds"}
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"  # an empty queue has no oldest message
    param = template["Parameters"]["EmbeddingsHighQueueMaxAgeSeconds"]
    assert param["Type"] == "Number"
    # A message retried once is already one visibility timeout old: the default must not fire on a single retry.
    assert param["Default"] > _default(template, "EmbeddingsQueueVisibilityTimeout")
    assert param["MinValue"] <= param["Default"] <= param["MaxValue"]
    # No other queue's age is watched by it (the normal and low queues may lag by design).
    assert (
        len(
            _alarms_on(
                resources,
                "AWS/SQS",
                "ApproximateAgeOfOldestMessage",
                {"Name": "QueueName", "Value": {"Fn::GetAtt": ["EmbeddingsLowQueue", "QueueName"]}},
            )
        )
        == 0
    )


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_messages_function_alarms(resources, metric):
    function = {"Name": "FunctionName", "Value": {"Ref": "MessagesFunction"}}
    [alarm] = _alarms_on(resources, "AWS/Lambda", metric, function)
    assert alarm["Statistic"] == "Sum"
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # Sustained, not a blip: M of N periods.
    assert 1 < alarm["DatapointsToAlarm"] <= alarm["EvaluationPeriods"]
    assert alarm["TreatMissingData"] == "notBreaching"


def test_alarms_notify_the_topic_only_when_set(template, resources):
    alarms = _alarms(resources)
    assert len(alarms) == len(DEAD_LETTER_QUEUES) + 3
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == ALARM_ACTIONS, name
        assert alarm["OKActions"] == ALARM_ACTIONS, name
        assert "AlarmName" not in alarm, name  # generated names: several stacks per account
    assert template["Conditions"]["HasAlarmTopic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}
    param = template["Parameters"]["AlarmTopicArn"]
    pattern = re.compile(param["AllowedPattern"])
    assert param["Default"] == "" and pattern.match("")
    assert pattern.match("arn:aws:sns:us-east-1:123456789012:agent-alarms")
    assert pattern.match("arn:aws-us-gov:sns:us-gov-west-1:123456789012:ops_alerts")
    for bad in ("agent-alarms", "arn:aws:sqs:us-east-1:123456789012:q", "arn:aws:sns:us-east-1:123:topic"):
        assert not pattern.match(bad), bad


# -- models: Bedrock on the configured ARNs only, the model plugins ----------------------------

MODEL_FUNCTIONS = ("MessagesFunction", "EmbeddingsFunction", "TasksFunction")


def test_bedrock_permission_is_conditional_and_scoped(template, resources):
    for name in FUNCTIONS:
        policies = resources[name]["Properties"]["Policies"]
        bedrock = [p for p in policies if "bedrock" in json.dumps(p)]
        assert bedrock == ([BEDROCK_POLICY] if name in MODEL_FUNCTIONS else []), name
    # No BedrockModelArns, no Bedrock permission: the joined list is empty.
    assert template["Conditions"]["HasBedrockModels"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "BedrockModelArns"}]}, ""]}]
    }
    param = template["Parameters"]["BedrockModelArns"]
    assert param["Type"] == "CommaDelimitedList" and param["Default"] == ""
    # CloudFormation matches AllowedPattern against each item of a CommaDelimitedList.
    pattern = re.compile(param["AllowedPattern"])
    for good in (
        "",
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-micro-v1:0",
        "arn:aws:bedrock:*::foundation-model/amazon.nova-micro-v1:0",  # a global profile's destinations
        "arn:aws-cn:bedrock:cn-north-1::foundation-model/amazon.titan-embed-text-v2:0",
    ):
        assert pattern.match(good), good
    for bad in (
        "*",
        "arn:aws:bedrock:us-east-1::foundation-model/*",
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.*",
        "arn:aws:bedrock:us-*::foundation-model/amazon.titan-embed-text-v2:0",
        "arn:aws:bedrock:us-east-1:123456789012:agent/ABC",
        "amazon.titan-embed-text-v2:0",
    ):
        assert not pattern.match(bad), bad


def test_model_settings_reach_the_code(template):
    """The environment names the template sets are the ones the code reads."""
    from core.model_providers.bedrock import build_plugin
    from core.settings import Settings
    from core.types import ModelType

    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["MODEL_PLUGINS"] == {"Ref": "ModelPlugins"}
    assert env["BEDROCK_TEXT_MODEL_ID"] == {"Ref": "BedrockTextModelId"}
    assert env["BEDROCK_EMBEDDING_MODEL_ID"] == {"Ref": "BedrockEmbeddingModelId"}
    assert Settings.from_env({"MODEL_PLUGINS": "core.model_providers.bedrock"}).model_plugins == [
        "core.model_providers.bedrock"
    ]
    # The parameters' empty defaults mean "the code's default", not an empty plugin list or a model named "".
    defaults = {
        "MODEL_PLUGINS": _default(template, "ModelPlugins"),
        "BEDROCK_TEXT_MODEL_ID": _default(template, "BedrockTextModelId"),
        "BEDROCK_EMBEDDING_MODEL_ID": _default(template, "BedrockEmbeddingModelId"),
    }
    assert Settings.from_env(defaults).model_plugins == Settings().model_plugins
    assert build_plugin(defaults).models == ()
    served = {
        m.model_type
        for m in build_plugin(
            {
                "BEDROCK_TEXT_MODEL_ID": "us.amazon.nova-micro-v1:0",
                "BEDROCK_EMBEDDING_MODEL_ID": "amazon.titan-embed-text-v2:0",
            }
        ).models
    }
    assert {ModelType.TEXT_LARGE, ModelType.TEXT_EMBEDDING} <= served
    pattern = re.compile(template["Parameters"]["ModelPlugins"]["AllowedPattern"])
    for good in ("", "core.model_providers.bedrock", "core.model_providers.bedrock,my_pkg.models:plugin"):
        assert pattern.match(good), good
    for bad in ("core.model_providers.bedrock,", "a b", "core/model_providers", "a,,b"):
        assert not pattern.match(bad), bad


# -- the messages function's reserved concurrency ----------------------------------------------


def test_messages_reserved_concurrency_is_conditional(template, resources):
    assert resources["MessagesFunction"]["Properties"]["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasMessagesReservedConcurrency", {"Ref": "MessagesReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    # Parameter values are strings to Fn::Equals: "-1" is the default, unreserved.
    assert template["Conditions"]["HasMessagesReservedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "MessagesReservedConcurrency"}, "-1"]}]
    }
    param = template["Parameters"]["MessagesReservedConcurrency"]
    assert param["Type"] == "Number" and param["Default"] == -1 and param["MinValue"] == -1
    for name in FUNCTIONS:
        if name != "MessagesFunction":
            assert "ReservedConcurrentExecutions" not in resources[name]["Properties"], name
    assert "ReservedConcurrentExecutions" not in template["Globals"]["Function"]


# -- tracing and Powertools --------------------------------------------------------------------


def test_tracing_parameter(template, resources):
    param = template["Parameters"]["Tracing"]
    assert param["AllowedValues"] == ["Active", "PassThrough"] and param["Default"] == "PassThrough"
    fn = template["Globals"]["Function"]
    assert fn["Tracing"] == {"Ref": "Tracing"}
    for name in FUNCTIONS:  # no function overrides the parameter
        assert "Tracing" not in resources[name]["Properties"], name
    assert template["Conditions"]["IsTracingActive"] == {"Fn::Equals": [{"Ref": "Tracing"}, "Active"]}
    assert fn["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == {
        "Fn::If": ["IsTracingActive", "false", "true"]
    }


def test_powertools_environment(template, resources):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}
    assert template["Parameters"]["LogLevel"]["Default"] in template["Parameters"]["LogLevel"]["AllowedValues"]
    assert isinstance(env["POWERTOOLS_METRICS_NAMESPACE"], str) and env["POWERTOOLS_METRICS_NAMESPACE"]
    services = [
        resources[name]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] for name in BUILT_FUNCTIONS
    ]
    assert len(set(services)) == len(BUILT_FUNCTIONS), services  # one per function: logs and metrics tell them apart
    assert "POWERTOOLS_SERVICE_NAME" not in env


# -- IAM: no Resource "*" except where AWS requires it -----------------------------------------

#: SAM policy templates used here; each takes a named resource (its Resource is built from the parameter).
SCOPED_POLICY_TEMPLATES = {
    "SQSSendMessagePolicy": "QueueName",
    "SQSPollerPolicy": "QueueName",
    "AWSSecretsManagerGetSecretValuePolicy": "SecretArn",
}
#: AWS managed policies SAM attaches by itself, with Resource "*", and why that is accepted.
MANAGED_POLICY_ALLOW_LIST = {
    "service-role/AWSLambdaBasicExecutionRole": "every SAM function: CloudWatch Logs for its own log group",
    "service-role/AWSLambdaVPCAccessExecutionRole": "VpcConfig: ENIs do not exist yet; ec2:Describe* has no resources",
    "AWSXrayWriteOnlyAccess": "Tracing: X-Ray supports no resource-level permissions",
}


def _wildcard_resources(node) -> list:
    """Every Resource (or NotResource) value under ``node`` that is or contains a "*"."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("Resource", "NotResource") and "*" in json.dumps(value):
                found.append(value)
            else:
                found += _wildcard_resources(value)
    elif isinstance(node, list):
        for item in node:
            found += _wildcard_resources(item)
    return found


def test_wildcard_finder_finds_wildcards():
    # Guard against a vacuous pass of the audits below.
    assert _wildcard_resources({"Statement": [{"Action": "s3:GetObject", "Resource": "*"}]}) == ["*"]
    nested = {"Fn::If": ["C", {"Statement": [{"Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]}]}, {}]}
    assert _wildcard_resources(nested) == [["arn:aws:s3:::b", "arn:aws:s3:::b/*"]]
    assert _wildcard_resources({"Statement": [{"Resource": {"Ref": "BedrockModelArns"}}]}) == []


#: IAM resources whose ARN must end in a wildcard, with the one value allowed.
RUNTIME_IDS = {
    "StreamManageConnectionsPolicy": {
        "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
        "${StreamApi}/live/POST/@connections/*"
    },
    # Log streams are created by Lambda as the function runs: every stream of the authorizer's own group.
    "StreamAuthorizerRole": {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
        "log-group:${StreamAuthorizerLogs}:log-stream:*"
    },
}


def test_no_wildcard_resources_in_the_template(resources):
    for name in FUNCTIONS:
        for policy in resources[name]["Properties"]["Policies"]:
            # A string is a managed policy: none is named here (SAM's own are audited below).
            assert isinstance(policy, dict), (name, policy)
            [(kind, body)] = policy.items()
            if kind in SCOPED_POLICY_TEMPLATES:
                assert set(body) == {SCOPED_POLICY_TEMPLATES[kind]}, (name, kind)
                assert "*" not in json.dumps(body), (name, kind)
            else:
                assert kind == "Fn::If" or kind == "Statement", (name, kind)
                assert not _wildcard_resources(policy), (name, policy)
    for name, resource in resources.items():
        if resource["Type"].startswith("AWS::IAM::") and name in RUNTIME_IDS:
            # Connection ids exist only at run time: the narrowest ARN is one API, one stage, POST only.
            assert _wildcard_resources(resource["Properties"]) == [RUNTIME_IDS[name]], name
        elif resource["Type"].startswith("AWS::IAM::"):
            assert not _wildcard_resources(resource["Properties"]), name
        # An SQS event would attach AWSLambdaSQSQueueExecutionRole (Resource "*"): mappings are resources instead.
        for event in resource.get("Properties", {}).get("Events", {}).values():
            assert event["Type"] != "SQS", name


SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
#: Transforms a template with the SAM translator, offline, and prints the result (make checkov runs it too).
SAM_TRANSFORM = ROOT / "infra" / "sam_transform.py"


@pytest.fixture(scope="module")
def transformed() -> dict:
    """The template as CloudFormation gets it after the SAM transform (needs the SAM CLI's venv)."""
    if not SAM_PYTHON.exists():
        pytest.skip("no .venv-sam (make check-deploy creates it)")
    run = subprocess.run(
        [str(SAM_PYTHON), str(SAM_TRANSFORM), str(TEMPLATE)],
        capture_output=True,
        text=True,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    if run.returncode != 0 and "No module named 'samtranslator'" in run.stderr:
        pytest.skip("the SAM translator is not installed in .venv-sam")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_generated_roles_have_no_wildcard_resources(transformed):
    roles = {name: r["Properties"] for name, r in transformed["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert {f"{name}Role" for name in FUNCTIONS} <= set(roles)
    allowed = {f"arn:aws:iam::aws:policy/{name}" for name in MANAGED_POLICY_ALLOW_LIST}
    for name, role in roles.items():
        if name in RUNTIME_IDS:  # hand-written (test_the_authorizer_role_may_write_its_own_log_group_and_nothing_else)
            assert _wildcard_resources(role.get("Policies", [])) == [RUNTIME_IDS[name]], name
            continue
        assert set(role.get("ManagedPolicyArns", [])) <= allowed, (name, role.get("ManagedPolicyArns"))
        assert not _wildcard_resources(role.get("Policies", [])), name
    for name, resource in transformed["Resources"].items():
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and name in RUNTIME_IDS:
            assert _wildcard_resources(resource["Properties"]) == [RUNTIME_IDS[name]], name
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            assert not _wildcard_resources(resource["Properties"]), name
    # SAM keeps the condition: without BedrockModelArns the statement is not there at all.
    bedrock = [p for p in roles["MessagesFunctionRole"]["Policies"] if "bedrock" in json.dumps(p)]
    [policy] = bedrock
    assert policy["Fn::If"][0] == "HasBedrockModels" and policy["Fn::If"][2] == {"Ref": "AWS::NoValue"}


# -- docs/deploy.md: the operator's page lists every parameter ---------------------------------

DEPLOY_DOC = ROOT / "docs" / "deploy.md"


def test_deploy_doc_lists_every_parameter_with_its_default(template):
    rows = {}
    for line in DEPLOY_DOC.read_text().splitlines():
        match = re.fullmatch(r"\| `(\w+)` \| (.+?) \| (.+) \|", line)
        if match and match[1] in template["Parameters"]:
            rows[match[1]] = match[2]
    assert set(rows) == set(template["Parameters"])
    for name, param in template["Parameters"].items():
        if "Default" not in param:
            expected = "*required*"
        elif param["Default"] == "":
            expected = "*empty*"
        else:
            expected = f"`{param['Default']}`"
        assert rows[name] == expected, name
    # The runbook the alarms point to exists, with the redrive command.
    text = DEPLOY_DOC.read_text()
    assert "## Alarms" in text and "aws sqs start-message-move-task --source-arn" in text
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            assert f"`{name}`" in text, name


# -- SnapStart for the messages function ------------------------------------------------------


def test_messages_snapstart_is_opt_in(template, resources):
    param = template["Parameters"]["MessagesSnapStart"]
    assert param["Default"] == "None" and set(param["AllowedValues"]) == {"None", "PublishedVersions"}
    props = resources["MessagesFunction"]["Properties"]
    assert props["SnapStart"] == {"ApplyOn": {"Ref": "MessagesSnapStart"}}
    # SnapStart applies to published versions only: the API must invoke an alias, not $LATEST.
    assert props["AutoPublishAlias"] == "live"
    for name in FUNCTIONS:
        if name != "MessagesFunction":
            assert "SnapStart" not in resources[name]["Properties"], name


def test_http_api_invokes_the_messages_alias(transformed):
    resources = transformed["Resources"]
    assert resources["MessagesFunctionAliaslive"]["Type"] == "AWS::Lambda::Alias"
    function = resources["MessagesFunction"]["Properties"]
    assert function["SnapStart"] == {"ApplyOn": {"Ref": "MessagesSnapStart"}}
    permissions = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Permission" and "MessagesFunction" in json.dumps(r["Properties"]["FunctionName"])
    ]
    assert permissions
    for permission in permissions:
        assert permission["FunctionName"] == {"Ref": "MessagesFunctionAliaslive"}, permission
    uris = [
        operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        for path in resources["HttpApi"]["Properties"]["Body"]["paths"].values()
        for operation in path.values()
    ]
    assert len(uris) == len(ROUTES)
    for uri in uris:
        assert uri.endswith("/functions/${MessagesFunctionAliaslive}/invocations"), uri


# -- checkov: every accepted finding is an inline skip, justified in docs/deploy.md ------------

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


def _inline_skips(resources) -> set[tuple[str, str]]:
    """(check id, logical id) of every `checkov: skip:` entry in the template's Metadata."""
    return {
        (skip["id"], name)
        for name, resource in resources.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }


def _documented_skips() -> dict[tuple[str, str], str]:
    """(check id, logical id) -> why, from the table under docs/deploy.md's "checkov" heading."""
    rows = {}
    section = DEPLOY_DOC.read_text().split("\n## checkov\n", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        match = re.fullmatch(r"\| `(CKV2?_AWS_\d+)` \| (.+?) \| (.+) \|", line)
        if match:
            for name in re.findall(r"`(\w+)`", match[2]):
                rows[(match[1], name)] = match[3]
    return rows


def test_every_checkov_skip_is_documented(resources):
    documented = _documented_skips()
    assert set(documented) == _inline_skips(resources)
    for name, resource in resources.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 20, (name, skip)  # a reason beside the id, too


def test_checkov_passes_with_only_the_documented_skips(transformed, tmp_path):
    if not CHECKOV.exists():
        pytest.skip("no .venv-checkov (make checkov creates it)")
    path = tmp_path / "transformed.json"
    path.write_text(json.dumps(transformed))
    run = subprocess.run(
        [str(CHECKOV), "--compact", "--skip-download", "--framework", "cloudformation", "-o", "json"]
        + ["--file", str(path)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=300,
    )
    report = json.loads(run.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert not failed and run.returncode == 0, failed
    skipped = {(c["check_id"], c["resource"].split(".", 1)[1]) for c in report["results"]["skipped_checks"]}
    # SAM carried each skip to the resource it generated (same logical id); each skip matched a finding's check.
    assert skipped == set(_documented_skips())
    assert report["summary"]["passed"] > 50  # it really checked the resources


# -- streamed replies: the $connect authorizer takes the HTTP API's JWTs ------------------------


def test_the_stream_connect_route_asks_the_jwt_authorizer_with_the_token_from_the_query_string(resources):
    from functions.jwt_verifier import TOKEN_PARAMETER

    connect = resources["StreamConnectRoute"]["Properties"]
    assert connect["RouteKey"] == "$connect"
    assert connect["AuthorizationType"] == "CUSTOM" and connect["AuthorizerId"] == {"Ref": "StreamAuthorizer"}
    authorizer = resources["StreamAuthorizer"]["Properties"]
    assert authorizer["ApiId"] == {"Ref": "StreamApi"} and authorizer["AuthorizerType"] == "REQUEST"
    # API Gateway answers 401 itself to a connect without the parameter; the function reads the same one.
    assert authorizer["IdentitySource"] == [f"route.request.querystring.{TOKEN_PARAMETER}"]
    assert "${StreamAuthorizerFunction.Arn}" in authorizer["AuthorizerUri"]["Fn::Sub"]
    # Messages ride on the authorised connection ($disconnect may have no authorizer).
    for route in ("StreamDisconnectRoute", "StreamSendMessageRoute"):
        assert resources[route]["Properties"]["AuthorizationType"] == "NONE", route
    permission = resources["StreamAuthorizerInvokePermission"]["Properties"]
    assert permission["FunctionName"] == {"Ref": AUTHORIZER}
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["SourceArn"]["Fn::Sub"].endswith(":${StreamApi}/authorizers/${StreamAuthorizer}")


def test_the_authorizer_checks_the_same_issuer_and_audiences_as_the_http_api(resources):
    function = resources[AUTHORIZER]["Properties"]
    assert function["Handler"] == "functions.ws_authorizer.handler"
    env = function["Environment"]["Variables"]
    jwt = resources["HttpApi"]["Properties"]["Auth"]["Authorizers"]["Jwt"]["JwtConfiguration"]
    assert env["JWT_ISSUER"] == jwt["issuer"] == {"Ref": "JwtIssuer"}
    assert jwt["audience"] == {"Ref": "JwtAudience"}
    assert env["JWT_AUDIENCE"] == {"Fn::Join": [",", {"Ref": "JwtAudience"}]}  # verifier_from_env splits on ","
    # No database, no secret, no VPC: it reads the issuer's public keys on the Internet.
    assert "VpcConfig" not in function and "Policies" not in function
    assert "SnapStart" not in function and "Tracing" not in function  # the Tracing parameter applies


def test_the_authorizer_role_may_write_its_own_log_group_and_nothing_else(resources):
    function = resources[AUTHORIZER]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["StreamAuthorizerRole", "Arn"]}
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "StreamAuthorizerLogs"}
    logs = resources["StreamAuthorizerLogs"]["Properties"]
    assert logs["RetentionInDays"] == {"Ref": "AccessLogRetentionDays"}
    role = resources["StreamAuthorizerRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    [policy] = role["Policies"]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == RUNTIME_IDS["StreamAuthorizerRole"]
    # X-Ray only when traced (X-Ray has no resource-level permissions), as SAM does for the other functions.
    condition, traced, untraced = role["ManagedPolicyArns"]["Fn::If"]
    assert condition == "IsTracingActive" and untraced == {"Ref": "AWS::NoValue"}
    assert traced == [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"}]


# -- the chat page: S3 behind CloudFront --------------------------------------------------------


def test_the_page_bucket_is_private_encrypted_versioned_and_tls_only(resources):
    bucket = resources["WebBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}  # no ACLs
    deny, allow = resources["WebBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"} and allow["Action"] == "s3:GetObject"
    source = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source.endswith(":distribution/${WebDistribution}")  # this distribution only


def test_cloudfront_serves_the_page_through_origin_access_control_with_its_security_headers(resources):
    config = resources["WebDistribution"]["Properties"]["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    [origin] = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["WebOriginAccessControl", "Id"]}
    assert origin["DomainName"] == {"Fn::GetAtt": ["WebBucket", "RegionalDomainName"]}
    oac = resources["WebOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"]) == ("s3", "always")
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "WebResponseHeadersPolicy"}
    headers = resources["WebResponseHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    security = headers["SecurityHeadersConfig"]
    csp = dict(
        directive.strip().split(" ", 1)
        for directive in security["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"].split(";")
    )
    assert csp["default-src"] == "'none'" and csp["script-src"] == csp["style-src"] == "'self'"
    assert csp["connect-src"].split() == [
        "'self'",
        "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}",
        "wss://${StreamApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}",
    ]
    assert csp["frame-ancestors"] == "'none'"
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert security["ContentTypeOptions"] == {"Override": True}
    assert security["FrameOptions"] == {"Override": True, "FrameOption": "DENY"}
    assert all(value["Override"] for value in security.values())


def test_the_page_urls_are_outputs_and_publish_web_reads_them(template):
    outputs = template["Outputs"]
    assert outputs["WebUrl"]["Value"] == {"Fn::Sub": "https://${WebDistribution.DomainName}"}
    assert outputs["WebBucketName"]["Value"] == {"Ref": "WebBucket"}
    assert outputs["WebDistributionId"]["Value"] == {"Ref": "WebDistribution"}
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    dry_run = subprocess.run(
        [make, "--no-print-directory", "-n", "publish-web", "STACK=agents"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for output in ("ApiUrl", "StreamUrl", "WebBucketName", "WebDistributionId", "WebUrl"):
        assert f"OutputKey=='{output}'" in dry_run and output in outputs, output
    assert "web/config.json" in dry_run and "create-invalidation" in dry_run
