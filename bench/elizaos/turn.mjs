// elizaOS 1.7.2 DM turns, for bench/message_turn.py: the baseline measured in the same run.
//
// Usage: node turn.mjs <postgres-url> <turns> <prior-messages> <fresh|prior200>
// Runs @elizaos/core's AgentRuntime with @elizaos/plugin-sql (Postgres), the plugins that match those
// our messages function deploys, and a canned model (zero latency, the same reply as ours):
// plugin-bootstrap (actions, providers, and the reflection evaluator with its facts and relationships,
// which our memory plugin ports) and plugin-knowledge 1.6.1 (documents, which our knowledge plugin ports).
// A timed turn is what elizaOS does for each incoming message: ensureConnection (its platform plugins
// and its server's message bus make sure of the entity, world and room every time, as our
// orchestrator's handle_message does), then messageService.handleMessage.
// "fresh": each timed turn is the first message of a new DM room (connected once before the timer
// starts); otherwise one DM room seeded with <prior-messages> messages. Prints {"ready": true} once
// set up, waits for a line on stdin (so the caller can read its round-trip counter), times <turns>
// turns and prints {"turn_ms": [...]}; elizaOS's own logs go to stderr.
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { AgentRuntime, ChannelType, ModelType } from "@elizaos/core";
import sqlPlugin from "@elizaos/plugin-sql";
import bootstrapPlugin from "@elizaos/plugin-bootstrap";
import knowledgePlugin from "@elizaos/plugin-knowledge";

const [url, turnsArg, priorArg, mode] = process.argv.slice(2);
const REPLY = "<response><thought>ok</thought><actions>REPLY</actions><text>Noted.</text></response>";
const DIMENSION = 384;

// A canned model: every text call answers the reply, every embedding is a fixed unit vector.
const vector = Array.from({ length: DIMENSION }, (_, i) => (i === 0 ? 1 : 0));
const cannedModel = {
  name: "canned",
  description: "zero-latency canned model (benchmark)",
  priority: 100,
  models: {
    [ModelType.TEXT_LARGE]: async () => REPLY,
    [ModelType.TEXT_SMALL]: async () => REPLY,
    [ModelType.TEXT_EMBEDDING]: async () => vector,
    [ModelType.OBJECT_SMALL]: async () => ({}),
    [ModelType.OBJECT_LARGE]: async () => ({}),
  },
};

const newRuntime = () =>
  new AgentRuntime({
    character: { name: "Bench", bio: ["A benchmark agent."], settings: {} },
    plugins: [sqlPlugin, bootstrapPlugin, knowledgePlugin, cannedModel],
    settings: { POSTGRES_URL: url, EMBEDDING_DIMENSION: String(DIMENSION) },
  });

// 1.7.2's initialize() reads the agents table before it runs the migrations, so on a fresh
// database the first runtime fails: migrate with it, then start a fresh one.
// The abandoned first runtime's services still wait for its initialization and reject after 30 s:
// on a busy machine the set-up outlasts that, and node would exit on the unhandled rejection.
let abandoned = false;
process.on("unhandledRejection", (err) => {
  if (abandoned && String(err?.message).includes("timed out waiting for runtime initialization")) return;
  console.error(err);
  process.exit(1);
});

async function started() {
  const first = newRuntime();
  try {
    await first.initialize();
    return first;
  } catch {
    abandoned = true;
    await first.runPluginMigrations();
    await first.stop().catch(() => {});
  }
  const runtime = newRuntime();
  await runtime.initialize();
  return runtime;
}

async function main() {
  const runtime = await started();
  const entityId = randomUUID();
  const worldId = randomUUID();
  const connect = (roomId) =>
    runtime.ensureConnection({
      entityId, roomId, worldId, userName: "user", name: "user", source: "bench", type: ChannelType.DM,
    });
  const connected = async () => {
    const roomId = randomUUID();
    await connect(roomId);
    return roomId;
  };
  const turn = async (roomId, text) => {
    await connect(roomId);
    const message = {
      id: randomUUID(), entityId, agentId: runtime.agentId, roomId, worldId,
      content: { text, source: "bench", channelType: ChannelType.DM }, createdAt: Date.now(),
    };
    await runtime.messageService.handleMessage(runtime, message, async () => []);
  };
  for (let i = 0; i < 20; i++) await turn(await connected(), "warm-up"); // JIT and caches warm, as ours
  const seeded = await connected();
  // Each turn stores the message and its reply: prior/2 turns make <prior> messages.
  for (let i = 0; i < Number(priorArg) / 2; i++) await turn(seeded, `message ${i}`);
  const rooms = [];
  for (let i = 0; i < Number(turnsArg); i++) rooms.push(mode === "fresh" ? await connected() : seeded);
  process.stdout.write(JSON.stringify({ ready: true }) + "\n");
  await new Promise((resolve) => process.stdin.once("data", resolve));
  const times = [];
  for (let i = 0; i < Number(turnsArg); i++) {
    const t0 = performance.now();
    await turn(rooms[i], `turn ${i}`);
    times.push(performance.now() - t0);
  }
  process.stdout.write(JSON.stringify({ turn_ms: times }) + "\n");
  await runtime.stop();
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
