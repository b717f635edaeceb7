package dev.qlora4j.lora.train;

import dev.qlora4j.lora.adapter.LoraConfig;
import dev.qlora4j.lora.adapter.LoraModel;
import dev.qlora4j.lora.data.DataSpec;
import dev.qlora4j.lora.data.Dataset;
import dev.qlora4j.lora.data.EvalSplit;
import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import dev.qlora4j.runtime.tokenizer.Tokenizer;
import dev.qlora4j.runtime.tokenizer.Tokenizers;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** Models, tokenizer and the generated "number → English words" task the training tests run on. */
final class TrainFixtures {
    private static Tokenizer gpt2;

    private TrainFixtures() {
    }

    static Path sharedData() {
        return Path.of(System.getProperty("qlora.shared", "../../shared")).toAbsolutePath().normalize().resolve("data");
    }

    static Path referenceDir() {
        return Path.of("../runtime/src/test/resources/reference").toAbsolutePath().normalize();
    }

    /** gpt2-a: a random GPT-2 (L=2, C=64, NH=4, V=50257, 128 positions); quant "none", "nf4", ... */
    static LoadedModel gpt2a(String quant) {
        return ModelLoader.load(referenceDir().resolve("gpt2-a"), LoadOptions.parse(quant), KernelProvider.get());
    }

    private static boolean warm;

    /**
     * Runs 20 training steps on gpt2-a (NF4) once per JVM. The Vector API's float {@code reduceLanes(ADD)} has no
     * fixed order, and its interpreted fallback and its C2 intrinsic may round differently, so bit-exact comparisons
     * between runs are only safe once the kernels are compiled.
     */
    static synchronized void warmUpKernels(Path tmp) throws IOException {
        if (warm) return;
        Dataset d = numbers(tmp, 32, 99, 16);
        try (LoadedModel m = gpt2a("nf4"); LoraModel lora = attach(m, lora(0.1), 1)) {
            Trainer t = new Trainer(lora, d.examples(), d.examples(), TrainConfig.defaults(2, 16, 20, 1e-3));
            while (!t.finished()) t.step();
            t.evaluate();
        }
        warm = true;
    }

    static synchronized Tokenizer tokenizer() {
        if (gpt2 == null) {
            try {
                gpt2 = Tokenizers.load(sharedData().resolve("tiny-gpt2"));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return gpt2;
    }

    /** LoRA r=8 on GPT-2's c_attn, c_proj (attention and MLP) and c_fc. */
    static LoraConfig lora(double dropout) {
        return LoraConfig.builder().r(8).loraAlpha(16).loraDropout(dropout).targetModules("c_attn", "c_proj", "c_fc")
                .build();
    }

    static LoraModel attach(LoadedModel m, LoraConfig cfg, long seed) {
        return LoraModel.attach(m.model(), cfg, seed);
    }

    /** {@code {"prompt": "4711 =", "completion": " four thousand seven hundred eleven"}} lines, seeded. */
    static Path numbersJsonl(Path dir, int n, long seed) throws IOException {
        SplittableRandom r = new SplittableRandom(seed);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int x = r.nextInt(10_000);
            lines.add("{\"prompt\": \"" + x + " =\", \"completion\": \" " + words(x) + "\"}");
        }
        Path f = dir.resolve("numbers-" + n + "-" + seed + ".jsonl");
        Files.write(f, lines);
        return f;
    }

    static Dataset numbers(Path dir, int n, long seed, int seqLen) throws IOException {
        return Dataset.load(numbersJsonl(dir, n, seed), DataSpec.auto(), tokenizer(), seqLen);
    }

    static EvalSplit.Parts split(Dataset d, double fraction, long seed) throws IOException {
        return EvalSplit.fraction(fraction).apply(d.examples(), seed);
    }

    private static final String[] ONES = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
            "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
            "nineteen"};
    private static final String[] TENS = {"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
            "ninety"};

    /** 0..9999 in English words: 4711 → "four thousand seven hundred eleven". */
    static String words(int x) {
        if (x < 20) return ONES[x];
        if (x < 100) return TENS[x / 10] + (x % 10 == 0 ? "" : "-" + ONES[x % 10]);
        if (x < 1000) return ONES[x / 100] + " hundred" + (x % 100 == 0 ? "" : " " + words(x % 100));
        return words(x / 1000) + " thousand" + (x % 1000 == 0 ? "" : " " + words(x % 1000));
    }
}
