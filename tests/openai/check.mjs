// check.mjs - the official OpenAI Node client against `hive serve`:
// chat, completion, streamed chat, and greedy streamed == non-streamed.
//   node tests/openai/check.mjs BASE_URL API_KEY MODEL
// Exits 0 when every check passed, 1 otherwise (messages on stderr).
import OpenAI from "openai";

const [base, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0, timeout: 120000 });
let failures = 0;
const check = (ok, what) => {
  if (!ok) { failures++; console.error(`FAILED: ${what}`); }
};

const messages = [{ role: "user", content: "Once upon a time" }];

const models = await client.models.list();
check(models.data.some((m) => m.id === model), `models.list has ${model}`);

const chat = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
const text = chat.choices[0].message.content;
check(typeof text === "string" && text.length > 0, "chat answer has text");
check(["stop", "length"].includes(chat.choices[0].finish_reason), "chat finish_reason");
check(chat.usage.total_tokens === chat.usage.prompt_tokens + chat.usage.completion_tokens, "chat usage adds up");

const cmpl = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 16, temperature: 0 });
check(typeof cmpl.choices[0].text === "string" && cmpl.choices[0].text.length > 0, "completion has text");

const stream = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0, stream: true });
let streamed = "", finish = null;
for await (const chunk of stream) {
  const c = chunk.choices[0];
  if (!c) continue;
  streamed += c.delta?.content ?? "";
  if (c.finish_reason) finish = c.finish_reason;
}
check(streamed === text, `greedy streamed ${JSON.stringify(streamed)} == non-streamed ${JSON.stringify(text)}`);
check(finish === chat.choices[0].finish_reason, "streamed finish_reason");

try {
  await client.chat.completions.create({ model: "no-such-model", messages });
  check(false, "unknown model must fail");
} catch (e) {
  check(e.status === 404 && e.code === "model_not_found", `unknown model: ${e.status} ${e.code}`);
}

console.log(failures ? `openai client: ${failures} checks FAILED` : "openai client: all checks passed");
process.exit(failures ? 1 : 0);
