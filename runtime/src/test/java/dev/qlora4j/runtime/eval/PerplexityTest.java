package dev.qlora4j.runtime.eval;

import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.quant.safetensors.SafetensorsFile;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import org.junit.jupiter.api.Test;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Windowed loss with Hugging Face's perplexity-guide semantics, against the PyTorch reference losses. */
class PerplexityTest {
    static final Path REF = Path.of("src/test/resources/reference/gpt2-a").toAbsolutePath();

    static int[] lossIds(SafetensorsFile f) {
        var seg = f.segment("loss_ids");
        int[] ids = new int[(int) (seg.byteSize() / 8)];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (int) seg.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 8L * i);
        }
        return ids;
    }

    @Test
    void oneWindowIsTheReferenceMeanLoss() {
        try (LoadedModel lm = ModelLoader.load(REF, LoadOptions.asStored(), KernelProvider.get());
             SafetensorsFile ref = SafetensorsFile.open(REF.resolve("expected.safetensors"))) {
            int[] ids = lossIds(ref);
            double want = ref.readFloats("loss_mean")[0];
            Perplexity.Result r = Perplexity.evaluate(lm.model(), ids, ids.length, ids.length, 5, null);
            assertEquals(ids.length - 1, r.tokens());
            assertEquals(1, r.windows());
            assertEquals(want, r.loss(), 1e-4 * Math.max(1, want));
            assertEquals(Math.exp(want), r.perplexity(), 1e-3 * Math.exp(want));
        }
    }

    @Test
    void windowsScoreEachTokenOnceOrSkipWindowStarts() {
        try (LoadedModel lm = ModelLoader.load(REF, LoadOptions.asStored(), KernelProvider.get());
             SafetensorsFile ref = SafetensorsFile.open(REF.resolve("expected.safetensors"))) {
            int[] ids = lossIds(ref);
            int n = ids.length;
            // stride = seq: disjoint windows, the first token of each window is not scored
            Perplexity.Result disjoint = Perplexity.evaluate(lm.model(), ids, 4, 4, 3, null);
            int windows = (n + 3) / 4;
            assertEquals(windows, disjoint.windows());
            assertEquals(n - windows, disjoint.tokens());
            // stride < seq: every token after the first is scored exactly once
            Perplexity.Result sliding = Perplexity.evaluate(lm.model(), ids, 6, 2, 3, null);
            assertEquals(n - 1, sliding.tokens());
            // the first window of a sliding evaluation scores its positions 1..seq-1 like the reference does
            float[] perPos = ref.readFloats("loss_per_pos");
            Perplexity.Result first = Perplexity.evaluate(lm.model(), java.util.Arrays.copyOf(ids, 6), 6, 2, 3, null);
            double want = 0;
            for (int p = 0; p < 5; p++) want += perPos[p];
            assertEquals(want / 5, first.loss(), 1e-4 * Math.max(1, want / 5));
        }
    }

    @Test
    void badWindowsAreRejected() {
        try (LoadedModel lm = ModelLoader.load(REF, LoadOptions.asStored(), KernelProvider.get())) {
            int[] ids = {1, 2, 3, 4};
            assertThrows(IllegalArgumentException.class, () -> Perplexity.evaluate(lm.model(), ids, 1, 1, 1, null));
            assertThrows(IllegalArgumentException.class, () -> Perplexity.evaluate(lm.model(), ids, 4, 5, 1, null));
            assertThrows(IllegalArgumentException.class, () -> Perplexity.evaluate(lm.model(), new int[]{1}, 4, 4, 1, null));
        }
    }
}
