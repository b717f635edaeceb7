package dev.qlora4j.runtime.load;

import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.quant.safetensors.TensorStore;
import dev.qlora4j.quant.weight.BlockScales;
import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.FourBitWeight;
import dev.qlora4j.quant.weight.RowwiseInt8Weight;
import dev.qlora4j.quant.weight.StoredWeight;
import dev.qlora4j.quant.weight.WeightFormat;
import dev.qlora4j.runtime.model.DecoderModel;
import dev.qlora4j.runtime.model.KvCache;
import dev.qlora4j.runtime.model.Linear;
import dev.qlora4j.runtime.model.Workspace;
import dev.qlora4j.runtime.quantize.CheckpointQuantizer;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link LoadOptions#noMmap()} on a checkpoint written by {@code qlora quantize}, whose weights are all used as
 * stored: with it no weight segment is a slice of the mapped file, without it every one is, and both loads hold the
 * same bytes, so the logits are bit for bit those of the mapped load (which DecoderReferenceTest holds to PyTorch).
 */
class NoMmapLoadTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"NF4", "INT8_ROWWISE"})
    void preQuantizedWeightsAreCopiedOutOfTheMapping(String format) {
        Path src = Path.of("src/test/resources/reference/gpt2-a").toAbsolutePath(), out = tmp.resolve("q");
        WeightFormat f = WeightFormat.valueOf(format);
        CheckpointQuantizer.quantize(src, out, new CheckpointQuantizer.Options(f, f == WeightFormat.NF4 ? 64 : 0,
                f == WeightFormat.NF4), false, s -> { });
        float[] mapped, copied;
        try (LoadedModel lm = ModelLoader.load(out, LoadOptions.asStored(), KernelProvider.get())) {
            Set<Long> file = fileAddresses(lm);
            for (MemorySegment s : segments(lm.model())) {
                assertTrue(file.contains(s.address()), "as stored: the bytes of the mapped file");
                assertFalse(s.isMapped(), "as a plain native segment (KernelSegments)");
            }
            mapped = logits(lm.model());
        }
        try (LoadedModel lm = ModelLoader.load(out, LoadOptions.asStored().withNoMmap(true), KernelProvider.get())) {
            List<MemorySegment> segs = segments(lm.model());
            assertEquals(1 + 4 * lm.model().spec().l() * 2, segs.size());
            Set<Long> file = fileAddresses(lm);
            for (MemorySegment s : segs) assertFalse(file.contains(s.address()), "--no-mmap: a private copy");
            copied = logits(lm.model());
        }
        assertArrayEquals(mapped, copied);
    }

    /** Where every tensor of the model directory's (mapped) store starts. */
    private static Set<Long> fileAddresses(LoadedModel lm) {
        Set<Long> out = new HashSet<>();
        TensorStore store = lm.dir().store();
        for (String n : store.names()) {
            MemorySegment s = store.segment(n);
            assertTrue(s.isMapped(), n);
            out.add(s.address());
        }
        return out;
    }

    /** The token embedding and every linear's stored data (codes and absmax). */
    private static List<MemorySegment> segments(DecoderModel m) {
        List<MemorySegment> out = new ArrayList<>();
        out.add(m.weights().wte().data());
        for (Linear l : m.weights().linears()) {
            StoredWeight w = l.weight();
            switch (w) {
                case FourBitWeight q -> {
                    out.add(q.packed());
                    out.add(q.scales() instanceof BlockScales.DoubleQuantScales d ? d.qabsmax() : null);
                }
                case RowwiseInt8Weight q -> {
                    out.add(q.cb());
                    out.add(q.scb());
                }
                case DenseWeight d -> out.add(d.data());
                default -> throw new AssertionError(w);
            }
        }
        return out;
    }

    private static float[] logits(DecoderModel m) {
        int[] ids = {464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13};
        int t = ids.length, v = m.spec().v();
        KvCache cache = new KvCache(m.spec(), 1, t);
        Workspace ws = new Workspace(m.spec(), 1, t, t, false, t);
        m.forward(ids, 0, 1, t, 0, cache, ws);
        float[] logits = new float[t * v]; // (T, V)
        m.logits(ws, 0, t, logits, 0);
        return logits;
    }
}
