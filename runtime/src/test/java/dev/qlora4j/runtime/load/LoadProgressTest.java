package dev.qlora4j.runtime.load;

import dev.qlora4j.quant.kernel.ScalarKernels;
import dev.qlora4j.runtime.quantize.CheckpointQuantizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The progress callbacks of loading and quantizing: once per unit of work, counting up to the total. */
class LoadProgressTest {
    static final Path TINY = Path.of(System.getProperty("qlora.shared", "../../shared"), "data", "tiny-gpt2");

    @TempDir
    Path tmp;

    @Test
    void loadingReportsEachTransformerBlock() {
        List<String> calls = new ArrayList<>();
        try (LoadedModel lm = ModelLoader.load(TINY, LoadOptions.parse("nf4"), new ScalarKernels(),
                (done, total) -> calls.add(done + "/" + total))) {
            assertEquals(2, lm.model().spec().l());
        }
        assertEquals(List.of("1/2", "2/2"), calls);
    }

    @Test
    void quantizingReportsEachLinearWeight() {
        List<String> calls = new ArrayList<>();
        CheckpointQuantizer.quantize(TINY, tmp.resolve("q"), CheckpointQuantizer.Options.nf4(), false, s -> { },
                (done, total) -> calls.add(done + "/" + total));
        // tiny-gpt2: 2 blocks × (c_attn, c_proj, c_fc, mlp.c_proj)
        List<String> want = new ArrayList<>();
        for (int i = 1; i <= 8; i++) want.add(i + "/8");
        assertEquals(want, calls);
    }
}
