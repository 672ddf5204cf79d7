#!/usr/bin/env bash
# Regenerates tests/fuzz/corpus/ (seed inputs, from real files and real
# messages) and tests/fuzz/dict/ (libFuzzer/AFL++ dictionaries).
#   bash tests/fuzz/make_corpus.sh [BUILD_DIR]      (default: build)
# Seeds come from fuzz_make_corpus (tiny hive mkmodel models, messages made
# by the protocol's encoders, DNS-SD packets made by the codec, a real
# weight transfer, JSON bodies) and, when ../shared is there, the first
# 12 KiB of stories260K.gguf and llama.cpp's tokenizer test texts.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
shared=../shared
[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target fuzz_make_corpus -j2 >/dev/null
out=tests/fuzz/corpus
rm -rf "$out"
"$build/fuzz_make_corpus" "$out"

if [ -f "$shared/models/stories260K.gguf" ]; then
  head -c 12288 "$shared/models/stories260K.gguf" > "$out/gguf/stories260K-head"
  head -c 4096 "$shared/models/stories260K.gguf" > "$out/tokenizer/stories260K-head"
fi
# llama.cpp's tokenizer tests: texts separated by "__ggml_vocab_test__" lines.
i=0
for f in "$shared"/tokenizers/llama.cpp-vocab/ggml-vocab-{llama-spm,gpt-2,deepseek-llm,falcon}.gguf.inp; do
  [ -f "$f" ] || continue
  python3 - "$f" "$out/tokenizer" "$i" <<'PY'
import sys
src, dst, base = sys.argv[1], sys.argv[2], int(sys.argv[3])
texts = open(src, 'rb').read().split(b'\n__ggml_vocab_test__\n')
texts = [t for t in texts if 0 < len(t) <= 200][:6]
for k, t in enumerate(texts):
    open('%s/llamacpp-%d-%d' % (dst, base, k), 'wb').write(bytes([(base + k) % 8, k * 3]) + t)
PY
  i=$((i + 1))
done

mkdir -p tests/fuzz/dict
cat > tests/fuzz/dict/gguf.dict <<'D'
"GGUF"
"general.architecture"
"general.alignment"
"llama"
"qwen2"
"qwen3"
"llama.block_count"
"llama.embedding_length"
"llama.feed_forward_length"
"llama.attention.head_count"
"llama.attention.head_count_kv"
"llama.attention.key_length"
"llama.rope.dimension_count"
"llama.rope.scaling.type"
"llama.vocab_size"
"tokenizer.ggml.model"
"tokenizer.ggml.tokens"
"tokenizer.ggml.merges"
"tokenizer.chat_template"
"token_embd.weight"
"output.weight"
"output_norm.weight"
"rope_freqs.weight"
"blk.0.attn_q.weight"
"blk.1.ffn_down.weight"
"\x00\x00\x00\x00\x00\x00\x00\x00"
"\xff\xff\xff\xff\xff\xff\xff\xff"
D
cp tests/fuzz/dict/gguf.dict tests/fuzz/dict/model.dict
cat > tests/fuzz/dict/tokenizer.dict <<'D'
"GGUF"
"<s>"
"</s>"
"<unk>"
"<|im_start|>"
"<|im_end|>"
"<|endoftext|>"
"hive"
"\xe2\x96\x81"
"<0x0A>"
"'s"
"\x0d\x0a"
D
cat > tests/fuzz/dict/chat.dict <<'D'
"<|im_start|>"
"<|start_header_id|>"
"<|eot_id|>"
"[INST]"
"<<SYS>>"
"</s>"
"<|user|>"
"<|end|>"
"{% for message in messages %}"
"message['role']"
"chatml"
"llama3"
"mistral"
"zephyr"
D
cat > tests/fuzz/dict/http.dict <<'D'
"\"model\""
"\"messages\""
"\"role\""
"\"content\""
"\"system\""
"\"user\""
"\"assistant\""
"\"prompt\""
"\"max_tokens\""
"\"stream\""
"\"stream_options\""
"\"include_usage\""
"\"temperature\""
"\"top_p\""
"\"top_k\""
"\"min_p\""
"\"seed\""
"\"stop\""
"\"presence_penalty\""
"\"frequency_penalty\""
"\"n\""
"\"type\""
"\"text\""
"null"
"true"
"1e308"
"\\ud83e\\udd99"
D
cat > tests/fuzz/dict/dns.dict <<'D'
"\x05_hive\x04_tcp\x05local\x00"
"\x09_services\x07_dns-sd\x04_udp\x05local\x00"
"\xc0\x0c"
"\x00\x0c\x00\x01"
"\x00\x21\x80\x01"
"\x00\x10\x80\x01"
"mac="
"ts=1700000000"
"v=1"
"id="
"port=7070"
"bye=1"
D
cat > tests/fuzz/dict/decompose.dict <<'D'
"```"
"```json\x0a"
"["
"]"
"{"
"}"
"\\\""
"\\u00e9"
"\"task\""
"\"prompt\""
"\"subtask\""
"\"description\""
", "
"null"
D
printf '"\\x01"\n"\\x02"\n"\\x20"\n"\\x21"\n"\\xff\\xff\\xff\\xff"\n' > tests/fuzz/dict/proto.dict
cp tests/fuzz/dict/proto.dict tests/fuzz/dict/weights.dict
cp tests/fuzz/dict/proto.dict tests/fuzz/dict/link.dict
printf '"HIVE\\x01"\n' >> tests/fuzz/dict/link.dict
echo "corpus: $(find "$out" -type f | wc -l) files, $(du -sh "$out" | cut -f1)"
