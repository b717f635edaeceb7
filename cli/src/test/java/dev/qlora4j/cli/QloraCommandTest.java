package dev.qlora4j.cli;

import dev.qlora4j.quant.safetensors.SafetensorsFile;
import dev.qlora4j.quant.safetensors.SafetensorsWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class QloraCommandTest {

    static final Path TINY = Path.of(System.getProperty("qlora.shared", "../../shared"), "data", "tiny-gpt2");

    @TempDir
    Path tmp;

    record Run(int code, String out, String err) {
        /** A user-facing failure: exactly one line on stderr naming {@code what}, no stack trace. */
        void assertOneLineError(int expectedCode, String... fragments) {
            assertEquals(expectedCode, code, () -> "exit code; stderr: " + err + "\nstdout: " + out);
            assertEquals(1, err.strip().lines().count(), () -> "one line expected:\n" + err);
            assertFalse(err.contains("\tat "), err);
            for (String f : fragments) assertTrue(err.contains(f), () -> "'" + f + "' not in: " + err);
        }
    }

    static Run run(String... args) {
        return run(new CommandLine(new QloraCommand()), args);
    }

    static Run run(CommandLine cl, String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(args);
        return new Run(code, out.toString(), err.toString());
    }

    Path quantized(String type) {
        Path out = tmp.resolve("q-" + type);
        Run r = run("quantize", "--model", TINY.toString(), "--type", type, "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        return out;
    }

    // ------------------------------------------------------------------------------------------- success

    @Test
    void helpAndVersion() {
        Run h = run("--help");
        assertEquals(0, h.code());
        assertTrue(h.out().contains("quantize") && h.out().contains("inspect") && h.out().contains("--verbose"), h.out());
        Run qh = run("quantize", "--help");
        assertEquals(0, qh.code());
        assertTrue(qh.out().contains("--no-double-quant") && qh.out().contains("--blocksize"), qh.out());
        assertEquals(0, run("inspect", "--help").code());
        assertEquals(0, run("help", "quantize").code());
        Run v = run("--version");
        assertEquals(0, v.code());
        assertTrue(v.out().startsWith("qlora4j "), v.out());
        Run none = run();
        assertEquals(0, none.code());
        assertTrue(none.out().contains("Usage: qlora"), none.out());
    }

    @Test
    void quantizePrintsSizesBeforeAndAfter() throws IOException {
        Path out = tmp.resolve("nf4");
        Run r = run("quantize", "--model", TINY.toString(), "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        assertEquals("", r.err());
        assertTrue(r.out().contains("as nf4, blocksize 64, double-quantized scales"), r.out());
        assertTrue(r.out().contains("linear weights: 8 tensors, 96 parameters"), r.out());
        assertTrue(r.out().contains("before: 0.00 MiB (384 B), 32.00 bits/param"), r.out());
        assertTrue(r.out().contains("after:  0.01 MiB (10,112 B), 842.667 bits/param"), r.out());
        assertTrue(r.out().contains(" MiB"), r.out());
        assertTrue(Files.isRegularFile(out.resolve("model.safetensors")));
        assertTrue(Files.readString(out.resolve("config.json")).contains("\"quant_method\": \"bitsandbytes\""));

        Run fp4 = run("quantize", "--model", TINY.toString(), "--type", "FP4", "--blocksize", "128", "--no-double-quant",
                "--out", tmp.resolve("fp4").toString());
        assertEquals(0, fp4.code(), fp4.err());
        assertTrue(fp4.out().contains("as fp4, blocksize 128, fp32 scales"), fp4.out());
        Run int8 = run("quantize", "--model", TINY.toString(), "--type", "int8", "--out", tmp.resolve("int8").toString());
        assertEquals(0, int8.code(), int8.err());
        assertTrue(int8.out().contains("int8 (LLM.int8 row-wise)"), int8.out());
    }

    @Test
    void verboseShowsProgressAfterTheSubcommandToo() {
        Run r = run("quantize", "--verbose", "--model", TINY.toString(), "--out", tmp.resolve("v").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("qlora quantize: quantized transformer.h.0.attn.c_attn.weight F32 [2, 6] -> NF4 [6, 2]"), r.err());
        Run r2 = run("--verbose", "quantize", "--model", TINY.toString(), "--out", tmp.resolve("v2").toString());
        assertTrue(r2.err().contains("writing"), r2.err());
    }

    @Test
    void forceReplacesAnExistingOutput() {
        Path out = quantized("nf4");
        Run r = run("quantize", "--model", TINY.toString(), "--type", "int8", "--force", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            assertTrue(f.contains("transformer.h.0.attn.c_attn.SCB"));
        }
    }

    @Test
    void inspectQuantizedDirectory() {
        Path out = quantized("nf4");
        Run r = run("inspect", out.toString());
        assertEquals(0, r.code(), r.err());
        String o = r.out();
        assertTrue(o.contains("config: gpt2 · quantization_config: bitsandbytes nf4, double quant"), o);
        assertTrue(o.matches("(?s).*transformer\\.h\\.0\\.attn\\.c_attn\\.weight +U8 +\\[6, 1] +6 +nf4 \\[6, 2] blocksize 64, double-quant.*"), o);
        assertTrue(o.contains("weight.absmax of transformer.h.0.attn.c_attn"), o);
        assertTrue(o.contains("tensors:    68"), o);
        // 102,714 = wte 100,514 + wpe 2,048 + 96 linear (logical shape) + 56 biases/LayerNorms
        assertTrue(o.contains("parameters: 102,714"), o);
        assertTrue(o.contains("quantized:  nf4: 8 weights, 96 parameters"), o);
        // h.0 ... before h.1, natural order
        assertTrue(o.indexOf("transformer.h.0.ln_1.bias") < o.indexOf("transformer.h.1.attn.c_attn.bias"));
    }

    @Test
    void inspectOriginalFilesAndSummary() {
        Run dir = run("inspect", TINY.toString());
        assertEquals(0, dir.code(), dir.err());
        assertTrue(dir.out().contains("parameters: 102,714"), dir.out());
        assertTrue(dir.out().contains("config: gpt2\n") || dir.out().contains("config: gpt2" + System.lineSeparator()), dir.out());
        Run file = run("inspect", "--summary", TINY.resolve("model.safetensors").toString());
        assertEquals(0, file.code(), file.err());
        assertFalse(file.out().contains("NAME"), file.out());
        assertTrue(file.out().contains("tensors:    28"), file.out());
        Run bin = run("inspect", TINY.resolve("pytorch_model.bin").toString());
        assertEquals(0, bin.code(), bin.err());
        assertTrue(bin.out().contains("transformer.h.0.attn.bias") && bin.out().contains("lm_head.weight"), bin.out());
        Run int8 = run("inspect", quantized("int8").toString());
        assertEquals(0, int8.code(), int8.err());
        assertTrue(int8.out().contains("int8 (LLM.int8 row-wise) [6, 2]"), int8.out());
        assertTrue(int8.out().contains("parameters: 102,714"), int8.out());
    }

    @Test
    void noMmapLoadsGiveTheSameEvalAndGeneration() throws IOException {
        Path nf4 = quantized("nf4"); // every weight used as stored: all copied with --no-mmap
        Path text = Files.writeString(tmp.resolve("text.txt"), "The quick brown fox jumps over the lazy dog. ".repeat(20));
        Run mapped = run("eval", "--model", nf4.toString(), "--data", text.toString(), "--seq", "32", "--json");
        Run copied = run("eval", "--model", nf4.toString(), "--data", text.toString(), "--seq", "32", "--json", "--no-mmap");
        assertEquals(0, copied.code(), copied.err());
        assertTrue(copied.out().contains("\"loss\""), copied.out());
        String timing = ",\"seconds\":[0-9.]+";
        assertEquals(mapped.out().replaceAll(timing, ""), copied.out().replaceAll(timing, ""));
        Run g1 = run("generate", "--model", nf4.toString(), "--prompt", "Hello", "--max-new-tokens", "8", "--greedy");
        Run g2 = run("generate", "--model", nf4.toString(), "--prompt", "Hello", "--max-new-tokens", "8", "--greedy",
                "--no-mmap");
        assertEquals(0, g2.code(), g2.err());
        assertEquals(g1.out(), g2.out());
        assertTrue(run("generate", "--help").out().contains("--no-mmap"));
    }

    // ------------------------------------------------------------------------------------------ user errors

    @Test
    void quantizeModelErrors() throws IOException {
        String out = tmp.resolve("o").toString();
        run("quantize", "--model", tmp.resolve("nope").toString(), "--out", out)
                .assertOneLineError(1, "--model", "nope", "no such directory");
        Path file = Files.writeString(tmp.resolve("file.txt"), "x");
        run("quantize", "--model", file.toString(), "--out", out).assertOneLineError(1, "--model", "not a directory");
        Path empty = Files.createDirectory(tmp.resolve("empty"));
        run("quantize", "--model", empty.toString(), "--out", out).assertOneLineError(1, "--model", "no config.json");
        Path noWeights = Files.createDirectory(tmp.resolve("noweights"));
        Files.copy(TINY.resolve("config.json"), noWeights.resolve("config.json"));
        run("quantize", "--model", noWeights.toString(), "--out", out).assertOneLineError(1, "noweights", "no weights");
        Path badConfig = Files.createDirectory(tmp.resolve("badconfig"));
        Files.writeString(badConfig.resolve("config.json"), "{\"model_type\": \"llama\"}");
        run("quantize", "--model", badConfig.toString(), "--out", out).assertOneLineError(1, "llama");
        Path truncated = Files.createDirectory(tmp.resolve("truncated"));
        Files.copy(TINY.resolve("config.json"), truncated.resolve("config.json"));
        byte[] st = Files.readAllBytes(TINY.resolve("model.safetensors"));
        Files.write(truncated.resolve("model.safetensors"), java.util.Arrays.copyOf(st, st.length / 2));
        run("quantize", "--model", truncated.toString(), "--out", out).assertOneLineError(1, "model.safetensors");
        assertFalse(Files.exists(Path.of(out)));
    }

    @Test
    void quantizeFlagErrors() {
        String m = TINY.toString(), out = tmp.resolve("o").toString();
        run("quantize", "--model", m, "--blocksize", "100", "--out", out).assertOneLineError(1, "--blocksize 100", "power of two");
        run("quantize", "--model", m, "--blocksize", "8192", "--out", out).assertOneLineError(1, "--blocksize 8192");
        run("quantize", "--model", m, "--type", "int8", "--blocksize", "64", "--out", out).assertOneLineError(1, "--blocksize", "int8");
        run("quantize", "--model", m, "--type", "int8", "--no-double-quant", "--out", out).assertOneLineError(1, "--no-double-quant");
        Path existing = quantized("nf4");
        run("quantize", "--model", m, "--out", existing.toString()).assertOneLineError(1, "--out", existing.toString(), "--force");
    }

    @Test
    void usageErrorsAreOneLinePlusAHint() {
        for (CommandLine cl : new CommandLine[]{new CommandLine(new QloraCommand()), QloraCommand.newCommandLine()}) {
            Run type = run(cl, "quantize", "--model", TINY.toString(), "--type", "q4", "--out", "x");
            assertEquals(2, type.code());
            assertTrue(type.err().contains("--type") && type.err().contains("q4"), type.err());
            assertTrue(type.err().contains("Try 'qlora quantize --help'"), type.err());
            assertTrue(type.err().strip().lines().count() <= 3, type.err());
            Run bs = run(cl, "quantize", "--model", TINY.toString(), "--blocksize", "abc", "--out", "x");
            assertEquals(2, bs.code());
            assertTrue(bs.err().contains("--blocksize") && bs.err().contains("abc"), bs.err());
            Run missing = run(cl, "quantize", "--model", TINY.toString());
            assertEquals(2, missing.code());
            assertTrue(missing.err().contains("--out"), missing.err());
            Run unknown = run(cl, "quantize", "--frobnicate");
            assertEquals(2, unknown.code());
            assertTrue(unknown.err().contains("--frobnicate"), unknown.err());
            assertFalse(unknown.err().contains("Usage:"), unknown.err());
            Run sub = run(cl, "finetune"); // not a subcommand
            assertEquals(2, sub.code());
            assertTrue(sub.err().contains("finetune"), sub.err());
            assertTrue(sub.err().contains("Try 'qlora --help'"), sub.err());
        }
    }

    @Test
    void inspectErrors() throws IOException {
        run("inspect", tmp.resolve("missing.safetensors").toString()).assertOneLineError(1, "PATH", "missing.safetensors", "no such file");
        Path garbage = Files.write(tmp.resolve("garbage.safetensors"), new byte[]{1, 2, 3});
        run("inspect", garbage.toString()).assertOneLineError(1, "garbage.safetensors");
        Path lying = tmp.resolve("lying.safetensors");
        Files.write(lying, new byte[]{(byte) 0xff, 0, 0, 0, 0, 0, 0, 0, '{', '}'});
        run("inspect", lying.toString()).assertOneLineError(1, "lying.safetensors");
        Path empty = Files.createDirectory(tmp.resolve("emptydir"));
        run("inspect", empty.toString()).assertOneLineError(1, "emptydir", "no model weights");
        Path notBin = Files.write(tmp.resolve("model.bin"), "not a pickle".getBytes());
        run("inspect", notBin.toString()).assertOneLineError(1, "model.bin");
        // --verbose adds the stack trace
        Run v = run("inspect", "--verbose", garbage.toString());
        assertEquals(1, v.code());
        assertTrue(v.err().contains("\tat "), v.err());
    }

    @Test
    void inspectFlagsInconsistentQuantizedWeights() throws IOException {
        Path q = quantized("nf4");
        Path broken = tmp.resolve("broken.safetensors");
        try (SafetensorsFile f = SafetensorsFile.open(q.resolve("model.safetensors"))) {
            SafetensorsWriter w = new SafetensorsWriter();
            for (String n : f.names()) if (!n.equals("transformer.h.1.mlp.c_fc.weight.absmax")) w.copyFrom(f, n);
            w.write(broken);
        }
        Run r = run("inspect", broken.toString());
        assertEquals(1, r.code());
        assertTrue(r.out().contains("INVALID"), r.out());
        assertTrue(r.err().contains("transformer.h.1.mlp.c_fc.weight.absmax") && r.err().contains("missing"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }
}
