package dev.qlora4j.cli;

import dev.qlora4j.runtime.generate.Generator;
import dev.qlora4j.runtime.generate.SamplingParams;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.ByteArrayOutputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** {@code qlora generate}: continue a prompt with KV-cache decoding, streaming tokens as they come. */
@Command(name = "generate", mixinStandardHelpOptions = true, usageHelpAutoWidth = true,
        description = {"Continue a prompt with a GPT-2 or BLOOM model, streaming the text as it is generated. "
                + "Greedy unless a sampling flag (--temperature, --top-k, --top-p) is given; seeded and reproducible."})
final class GenerateCommand extends Subcommand {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "The text to continue.")
    String prompt;

    @Option(names = "--adapter", paramLabel = "DIR",
            description = "Apply a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors), e.g. from 'qlora train'.")
    Path adapter;

    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "50", description = "At most N new tokens (default 50).")
    int maxNewTokens;

    @Option(names = "--greedy", description = "Always pick the most likely token (the default without sampling flags).")
    boolean greedy;

    @Option(names = "--temperature", paramLabel = "T", description = "Sample with temperature T > 0.")
    Float temperature;

    @Option(names = "--top-k", paramLabel = "K", description = "Sample among the K most likely tokens.")
    Integer topK;

    @Option(names = "--top-p", paramLabel = "P", description = "Sample among the most likely tokens whose probability adds up to P (0 < P <= 1).")
    Float topP;

    @Option(names = "--repetition-penalty", paramLabel = "R", defaultValue = "1.0",
            description = "Divide the scores of tokens already in the text by R (HF's CTRL-style penalty); 1 = off.")
    float repetitionPenalty;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Random seed for sampling (default 0).")
    long seed;

    @Override
    int run() {
        boolean sampling = temperature != null || topK != null || topP != null;
        if (greedy && sampling) throw new CliError("--greedy cannot be combined with --temperature, --top-k or --top-p");
        if (maxNewTokens < 1) throw new CliError("--max-new-tokens must be at least 1, got " + maxNewTokens);
        if (temperature != null && !(temperature > 0 && Float.isFinite(temperature))) {
            throw new CliError("--temperature must be > 0, got " + temperature);
        }
        if (topK != null && topK < 0) throw new CliError("--top-k must be >= 0, got " + topK);
        if (topP != null && !(topP > 0 && topP <= 1)) throw new CliError("--top-p must be in (0, 1], got " + topP);
        if (!(repetitionPenalty > 0 && Float.isFinite(repetitionPenalty))) {
            throw new CliError("--repetition-penalty must be > 0, got " + repetitionPenalty);
        }
        SamplingParams params;
        try {
            params = sampling
                    ? new SamplingParams(false, temperature == null ? 1f : temperature, topK == null ? 0 : topK,
                    topP == null ? 1f : topP, repetitionPenalty, seed)
                    : new SamplingParams(true, 1f, 0, 1f, repetitionPenalty, seed);
        } catch (IllegalArgumentException e) {
            throw new CliError(e.getMessage());
        }
        try (LoadedModel lm = modelOptions.load("none", err(), true)) {
            if (adapter != null) ModelOptions.loadAdapter(lm, adapter);
            Tokenizer tok = lm.tokenizer();
            int[] ids = tok.encode(prompt);
            if (ids.length == 0) throw new CliError("--prompt: the prompt encodes to no tokens");
            int context = Math.min(lm.model().spec().maxT(), ids.length + maxNewTokens);
            if (ids.length >= context) {
                throw new CliError("--prompt: " + ids.length + " tokens leave no room in the model's context of "
                        + lm.model().spec().maxT());
            }
            int[] eos = lm.dir().config().eosTokenIds().stream().mapToInt(Integer::intValue).toArray();
            PrintWriter out = out();
            out.print(prompt);
            out.flush();
            StreamingText text = new StreamingText(tok, out);
            Generator gen = new Generator(lm.model(), context, 256);
            long t0 = System.nanoTime();
            int[] got = gen.generate(ids, maxNewTokens, params, eos, id -> {
                text.add(id);
                return true;
            });
            text.finish();
            out.println();
            out.flush();
            double s = (System.nanoTime() - t0) / 1e9;
            note(String.format("%d prompt + %d new tokens in %.2f s (%.1f tok/s overall)", ids.length, got.length, s,
                    got.length / s));
        }
        return QloraCommand.EXIT_OK;
    }

    /** Prints the text of the tokens as they come, holding back bytes of a UTF-8 character split across tokens. */
    static final class StreamingText {
        private final Tokenizer tok;
        private final PrintWriter out;
        private final ByteArrayOutputStream pending = new ByteArrayOutputStream();
        private final int[] one = new int[1];

        StreamingText(Tokenizer tok, PrintWriter out) {
            this.tok = tok;
            this.out = out;
        }

        void add(int id) {
            one[0] = id;
            pending.writeBytes(tok.decodeBytes(one, true));
            byte[] b = pending.toByteArray();
            int complete = completeUtf8Prefix(b);
            if (complete > 0) {
                out.print(new String(b, 0, complete, StandardCharsets.UTF_8));
                out.flush();
                pending.reset();
                pending.write(b, complete, b.length - complete);
            }
        }

        void finish() {
            if (pending.size() > 0) out.print(pending.toString(StandardCharsets.UTF_8));
        }

        /** Length of the longest prefix that does not end inside a multi-byte UTF-8 sequence. */
        static int completeUtf8Prefix(byte[] b) {
            int n = b.length;
            for (int back = 1; back <= Math.min(3, n); back++) {
                int c = b[n - back] & 0xff;
                if ((c & 0xc0) == 0x80) continue; // continuation byte: look further back
                int need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
                return need > back ? n - back : n;
            }
            return n;
        }
    }
}
