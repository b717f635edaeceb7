package dev.qlora4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsFile;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static dev.qlora4j.cli.QloraCommandTest.TINY;
import static dev.qlora4j.cli.QloraCommandTest.run;
import static org.junit.jupiter.api.Assertions.*;

class MergeCommandTest {

    @TempDir
    static Path shared;
    static Path adapter, text;

    @TempDir
    Path tmp;

    @BeforeAll
    static void trainAnAdapter() throws IOException {
        adapter = shared.resolve("adapter");
        QloraCommandTest.Run r = TrainCommandTest.train(TrainCommandTest.numbers(shared, 30), adapter, "--quant", "none");
        assertEquals(0, r.code(), r.err());
        text = shared.resolve("t.txt");
        Files.writeString(text, "12 = one two\n34 = three four\n56 = five six\n78 = seven eight\n");
    }

    static double evalLoss(String... args) throws IOException {
        String[] a = new String[args.length + 5];
        a[0] = "eval";
        a[1] = "--data";
        a[2] = text.toString();
        a[3] = "--json";
        a[4] = "--seq";
        System.arraycopy(args, 0, a, 5, args.length);
        QloraCommandTest.Run r = run(a);
        assertEquals(0, r.code(), r.err());
        return new ObjectMapper().readTree(r.out()).get("loss").asDouble();
    }

    @Test
    void mergedCheckpointComputesWhatBasePlusAdapterComputes() throws IOException {
        Path merged = tmp.resolve("merged");
        QloraCommandTest.Run r = run("merge", "--model", TINY.toString(), "--adapter", adapter.toString(), "--out", merged.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("merged 8 LoRA modules (r=4)"), r.out());
        for (String f : new String[]{"config.json", "model.safetensors", "tokenizer.json", "vocab.json", "merges.txt"}) {
            assertTrue(Files.isRegularFile(merged.resolve(f)), f);
        }
        double withAdapter = evalLoss("16", "--model", TINY.toString(), "--adapter", adapter.toString());
        double base = evalLoss("16", "--model", TINY.toString());
        double fromMerged = evalLoss("16", "--model", merged.toString());
        assertNotEquals(base, withAdapter);
        assertEquals(withAdapter, fromMerged, 1e-4 * Math.abs(withAdapter));

        Path bf16 = tmp.resolve("bf16");
        assertEquals(0, run("merge", "--model", TINY.toString(), "--adapter", adapter.toString(), "--out", bf16.toString(),
                "--dtype", "bf16").code());
        try (SafetensorsFile f = SafetensorsFile.open(bf16.resolve("model.safetensors"))) {
            assertEquals(DType.BF16, f.info("transformer.h.0.attn.c_attn.weight").dtype());
        }
        assertTrue(new ObjectMapper().readTree(bf16.resolve("config.json").toFile()).get("torch_dtype").asText().equals("bfloat16"));

        run("merge", "--model", TINY.toString(), "--adapter", adapter.toString(), "--out", merged.toString())
                .assertOneLineError(1, "--out", "already exists", "--force");
        QloraCommandTest.Run forced = run("merge", "--model", TINY.toString(), "--adapter", adapter.toString(), "--out",
                merged.toString(), "--force");
        assertEquals(0, forced.code(), forced.err());
    }

    @Test
    void mergeErrorsAreOneLine() {
        String out = tmp.resolve("m").toString();
        run("merge", "--model", TINY.toString(), "--adapter", adapter.toString(), "--out", out, "--dtype", "f8")
                .assertOneLineError(1, "--dtype", "f8");
        run("merge", "--model", TINY.toString(), "--adapter", tmp.resolve("no").toString(), "--out", out)
                .assertOneLineError(1, "--adapter", "no such directory");
        run("merge", "--model", tmp.resolve("nomodel").toString(), "--adapter", adapter.toString(), "--out", out)
                .assertOneLineError(1, "--model", "no such directory");
        QloraCommandTest.Run usage = run("merge", "--model", TINY.toString(), "--adapter", adapter.toString());
        assertEquals(2, usage.code());
        assertTrue(usage.err().startsWith("qlora merge: Missing required option: '--out=DIR'"), usage.err());
        run("merge", "--model", TINY.toString(), "--adapter", adapter.toString(), "--out", TINY.toString(), "--force")
                .assertOneLineError(1, "output directory is the base model's");
        assertFalse(Files.exists(tmp.resolve("m")));
    }

    /** Without --adapter: the model re-saved in another dtype (e.g. a full fine-tune's F32 output as BF16). */
    @Test
    void withoutAdapterReSavesTheModelInTheDtype() throws Exception {
        Path out = tmp.resolve("resaved");
        QloraCommandTest.Run r = run("merge", "--model", TINY.toString(), "--out", out.toString(), "--dtype", "bf16");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("re-saved"), r.out());
        assertEquals("bfloat16", new ObjectMapper().readTree(out.resolve("config.json").toFile()).get("torch_dtype").asText());
        try (var f = dev.qlora4j.quant.safetensors.SafetensorsFile.open(out.resolve("model.safetensors"));
             var src = dev.qlora4j.quant.safetensors.SafetensorsFile.open(TINY.resolve("model.safetensors"))) {
            for (String name : f.names()) {
                assertEquals(dev.qlora4j.quant.safetensors.DType.BF16, f.info(name).dtype(), name);
                float[] got = f.readFloats(name), want = src.readFloats(src.contains(name) ? name : name.substring("transformer.".length()));
                assertEquals(want.length, got.length, name);
                for (int i = 0; i < got.length; i++) assertEquals(want[i], got[i], Math.abs(want[i]) / 128.0, name + "[" + i + "]");
            }
        }
    }
}
