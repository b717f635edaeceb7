package dev.qlora4j.runtime.model;

import dev.qlora4j.quant.kernel.ScalarKernels;
import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import dev.qlora4j.runtime.ops.GradCheck;
import dev.qlora4j.runtime.ops.LmHeadLoss;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * End-to-end backward on the small reference models (GPT-2, BLOOM, BLOOM with the post-LayerNorm residual, BLOOM on
 * an NF4+DQ base) against central differences of the full forward + loss: d(loss)/d(input embeddings) (through GPT-2's
 * position embedding and BLOOM's embedding LayerNorm), d(loss)/d(hidden state entering block 1) (through a test hook
 * that adds a trainable offset to block 0's output projection), adapter-style hook parameters {@code y += x·Pᵀ} on
 * every kind of linear, LayerNorm γ/β, and the tied token embedding (embedding + LM head paths). Each group checks a
 * few random entries, its largest entries and the directional derivative along its gradient.
 */
class BackwardTest {
    static final int B = 2, T = 7, PER_GROUP = 6, TOP = 2;

    /** {@code y += x·Pᵀ}, P (out, in): the shape of an adapter, with a plain trainable matrix. */
    static final class ProjHook implements LinearHook {
        final int in, out;
        final float[] p, dp;

        ProjHook(int in, int out, Random r) {
            this.in = in;
            this.out = out;
            this.p = GradCheck.randn(r, in * out, 0.05);
            this.dp = new float[in * out];
        }

        @Override
        public void forward(float[] x, int xOff, float[] y, int yOff, int m) {
            for (int r = 0; r < m; r++) {
                for (int o = 0; o < out; o++) {
                    float s = 0f;
                    for (int i = 0; i < in; i++) s += x[xOff + r * in + i] * p[o * in + i];
                    y[yOff + r * out + o] += s;
                }
            }
        }

        @Override
        public void backward(float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff, int m) {
            for (int r = 0; r < m; r++) {
                for (int o = 0; o < out; o++) {
                    float d = dy[dyOff + r * out + o];
                    for (int i = 0; i < in; i++) {
                        dp[o * in + i] += d * x[xOff + r * in + i];
                        dx[dxOff + r * in + i] += d * p[o * in + i];
                    }
                }
            }
        }
    }

    /** {@code y += D}, D (rows, out): its gradient is the gradient of the residual stream the linear feeds. */
    static final class OffsetHook implements LinearHook {
        final int out;
        final float[] d, dd;

        OffsetHook(int rows, int out) {
            this.out = out;
            this.d = new float[rows * out];
            this.dd = new float[rows * out];
        }

        @Override
        public void forward(float[] x, int xOff, float[] y, int yOff, int m) {
            for (int i = 0; i < m * out; i++) y[yOff + i] += d[i];
        }

        @Override
        public void backward(float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff, int m) {
            for (int i = 0; i < m * out; i++) dd[i] += dy[dyOff + i];
        }
    }

    /** A parameter group: how to read and perturb entry i, and its analytic gradient. */
    interface Param {
        int size();

        float get(int i);

        void set(int i, float v);

        float grad(int i);
    }

    static Param array(float[] p, float[] g) {
        return new Param() {
            public int size() { return p.length; }
            public float get(int i) { return p[i]; }
            public void set(int i, float v) { p[i] = v; }
            public float grad(int i) { return g[i]; }
        };
    }

    static Param dense(DenseWeight w, float[] g) {
        return new Param() {
            public int size() { return Math.toIntExact(w.elementCount()); }
            public float get(int i) { return w.get(i); }
            public void set(int i, float v) { GradCheck.set(w, i, v); }
            public float grad(int i) { return g[i]; }
        };
    }

    /** A restriction of a parameter to some entries (e.g. rows of the tokens in the batch). */
    static Param subset(Param p, int[] idx, float[] g) {
        return new Param() {
            public int size() { return idx.length; }
            public float get(int i) { return p.get(idx[i]); }
            public void set(int i, float v) { p.set(idx[i], v); }
            public float grad(int i) { return g[idx[i]]; }
        };
    }

    @ParameterizedTest(name = "{0} quant={1} postLN={2} chunkRows={3} kernels={4}")
    @CsvSource({"gpt2-a, none, false, 8, default", // V = 50257: the scalar LM head would take ~150 ms per forward
            "bloom-a, none, false, 8, scalar", "bloom-a, none, true, 5, scalar", "bloom-a, nf4, false, 8, scalar"})
    void gradientsMatchFiniteDifferences(String name, String quant, boolean postLn, int chunkRows, String kern) {
        try (LoadedModel lm = ModelLoader.load(ReferenceFile.referenceDir().resolve(name), LoadOptions.parse(quant),
                kern.equals("scalar") ? new ScalarKernels() : dev.qlora4j.quant.kernel.KernelProvider.get())) {
            DecoderWeights w0 = lm.model().weights();
            DecoderSpec s0 = w0.spec();
            DecoderSpec spec = new DecoderSpec(s0.arch(), s0.l(), s0.c(), s0.nh(), s0.v(), s0.maxT(), s0.eps(), postLn);
            DenseWeight wte = GradCheck.copy(w0.wte()), wpe = w0.wpe() == null ? null : GradCheck.copy(w0.wpe());
            LayerNormParams embLn = w0.embLn() == null ? null
                    : new LayerNormParams(w0.embLn().gamma().clone(), w0.embLn().beta().clone(), w0.embLn().eps());
            DecoderWeights w = new DecoderWeights(spec, wte, wpe, embLn, w0.blocks(), w0.lnF());
            DecoderModel model = new DecoderModel(w, lm.model().kernels());
            int c = spec.c(), v = spec.v(), bn = B * T;
            Random r = new Random(name.hashCode() * 31L + (postLn ? 1 : 0));

            // hooks: trainable projections on every kind of linear, an offset on block 0's output
            BlockWeights b0 = w.blocks()[0], b1 = w.blocks()[spec.l() - 1];
            Linear[] hooked = {b0.qkv(), b1.attnProj(), b0.fc(), b1.mlpProj()};
            ProjHook[] proj = new ProjHook[hooked.length];
            for (int i = 0; i < hooked.length; i++) {
                proj[i] = new ProjHook(hooked[i].in(), hooked[i].out(), r);
                hooked[i].addHook(proj[i]);
            }
            OffsetHook offset = new OffsetHook(bn, c);
            b0.mlpProj().addHook(offset);

            int[] tokens = new int[bn], targets = new int[bn];
            for (int i = 0; i < bn; i++) tokens[i] = r.nextInt(v);
            for (int i = 0; i < bn; i++) targets[i] = i % T == T - 1 ? LmHeadLoss.IGNORE_INDEX : tokens[i + 1];
            targets[3] = LmHeadLoss.IGNORE_INDEX;

            KvCache cache = new KvCache(spec, B, T);
            Workspace ws = new Workspace(spec, B, T, T, true, chunkRows); // B·T = 14 rows
            LmHeadLoss head = new LmHeadLoss(model.kernels(), wte, ws.logits, ws.chunkRows);
            DecoderBackward bwd = new DecoderBackward(model, B, T);
            bwd.collectLayerNormGrads();

            // analytic gradients
            float[] dWte = new float[v * c], dWpe = wpe == null ? null : new float[spec.maxT() * c];
            float[] dEmbG = embLn == null ? null : new float[c], dEmbB = embLn == null ? null : new float[c];
            model.forward(tokens, 0, B, T, 0, cache, ws);
            double loss = head.forwardBackward(ws.lnf, 0, targets, 0, bn, bwd.dlnf, 0, dWte,
                    head.countTargets(targets, 0, bn));
            float[] dEmb = bwd.backward(ws, cache, B, T);
            bwd.embeddingBackward(tokens, 0, B, T, dWte, dWpe, dEmbG, dEmbB);
            float[] dEmbCopy = dEmb.clone();
            System.out.printf("[gradcheck] %s quant=%s postLN=%s loss %.6f%n", name, quant, postLn, loss);

            // lossAndBackward is the same computation; hook and LayerNorm gradients accumulate, so keep and re-zero them
            float[][] hookGrads = new float[proj.length + 1][];
            for (int i = 0; i < proj.length; i++) hookGrads[i] = proj[i].dp.clone();
            hookGrads[proj.length] = offset.dd.clone();
            for (ProjHook h : proj) java.util.Arrays.fill(h.dp, 0f);
            java.util.Arrays.fill(offset.dd, 0f);
            float[] dLnF = bwd.dLnFGamma().clone();
            bwd.zeroLayerNormGrads();
            model.forward(tokens, 0, B, T, 0, cache, ws);
            assertEquals(loss, bwd.lossAndBackward(head, ws, cache, targets, 0, B, T), 1e-12);
            for (int i = 0; i < bn * c; i++) assertEquals(dEmbCopy[i], dEmb[i], 0f);
            for (int i = 0; i < proj.length; i++) assertArrayEquals(hookGrads[i], proj[i].dp, 0f);
            assertArrayEquals(hookGrads[proj.length], offset.dd, 0f);
            assertArrayEquals(dLnF, bwd.dLnFGamma(), 0f);

            java.util.function.DoubleSupplier f = () -> {
                model.forward(tokens, 0, B, T, 0, cache, ws);
                return head.forward(ws.lnf, 0, targets, 0, bn);
            };
            String tag = name + (quant.equals("none") ? "" : "/" + quant) + (postLn ? "/postLN" : "") + " ";
            List<Double> worst = new ArrayList<>();
            // d(loss)/d(input embeddings)
            if (wpe != null) {
                int[] rows = new int[T * c];
                for (int i = 0; i < T * c; i++) rows[i] = i;
                // wpe row t receives Σ_b d(embedding at b, t)
                float[] sumEmb = new float[spec.maxT() * c];
                for (int i = 0; i < bn * c; i++) sumEmb[(i / c % T) * c + i % c] += dEmbCopy[i];
                for (int i = 0; i < T * c; i++) assertEquals(sumEmb[i], dWpe[i], 1e-6f);
                worst.add(check(tag + "d embeddings (via wpe)", subset(dense(wpe, dWpe), rows, dWpe), f, 1e-2, r));
            } else {
                worst.add(check(tag + "d embeddings (via emb LN beta)", array(embLn.beta(), dEmbB), f, 1e-2, r));
                worst.add(check(tag + "d emb LN gamma", array(embLn.gamma(), dEmbG), f, 1e-2, r));
            }
            // d(loss)/d(hidden state entering block 1)
            worst.add(check(tag + "d block-1 input (offset hook)", array(offset.d, offset.dd), f, 1e-2, r));
            String[] names = {"qkv", "attn proj", "fc", "mlp proj"};
            for (int i = 0; i < proj.length; i++) {
                worst.add(check(tag + "hook P on " + names[i], array(proj[i].p, proj[i].dp), f, 1e-2, r));
            }
            worst.add(check(tag + "ln1 gamma (last block)", array(b1.ln1().gamma(), bwd.dLn1Gamma()[spec.l() - 1]), f,
                    1e-2, r));
            worst.add(check(tag + "ln2 beta (block 0)", array(b0.ln2().beta(), bwd.dLn2Beta()[0]), f, 1e-2, r));
            worst.add(check(tag + "ln_f gamma", array(w.lnF().gamma(), bwd.dLnFGamma()), f, 1e-2, r));
            // tied token embedding: rows of the batch's tokens (embedding + LM head) and a few others (LM head only)
            var rowSet = new java.util.LinkedHashSet<Integer>(); // distinct rows: the directional check needs them
            while (rowSet.size() < PER_GROUP) rowSet.add(tokens[r.nextInt(bn)]);
            while (rowSet.size() < 2 * PER_GROUP) rowSet.add(r.nextInt(v));
            int[] idx = rowSet.stream().flatMapToInt(row -> java.util.stream.IntStream.range(row * c, row * c + c))
                    .toArray();
            worst.add(check(tag + "wte (tied)", subset(dense(wte, dWte), idx, dWte), f, 1e-2, r));
            for (Linear l : hooked) l.removeHook(l.hooks()[0]);
            b0.mlpProj().removeHook(offset);
            System.out.printf("[gradcheck] %s worst over all groups: %.3e%n", tag, worst.stream().mapToDouble(d -> d)
                    .max().orElse(0));
        }
    }

    /** The Vector API kernels (the training default) give the scalar reference's gradients. */
    @ParameterizedTest(name = "{0} quant={1}")
    @CsvSource({"gpt2-a, none", "bloom-a, none", "bloom-a, nf4"})
    void defaultKernelsMatchScalar(String name, String quant) {
        float[] want = gradients(name, quant, new ScalarKernels());
        float[] got = gradients(name, quant, dev.qlora4j.quant.kernel.KernelProvider.get());
        var e = new GradCheck.Errors(name + "/" + quant + " default kernels vs scalar: d emb + hook grads", 1e-2);
        for (int i = 0; i < want.length; i++) e.add("[" + i + "]", want[i], got[i]);
        e.check(1e-3);
    }

    /** d embeddings (B, T, C) followed by the gradients of a projection hook on every linear. */
    static float[] gradients(String name, String quant, dev.qlora4j.quant.kernel.Kernels kernels) {
        try (LoadedModel lm = ModelLoader.load(ReferenceFile.referenceDir().resolve(name), LoadOptions.parse(quant),
                kernels)) {
            DecoderModel model = lm.model();
            DecoderSpec spec = model.spec();
            Random r = new Random(77);
            List<ProjHook> hooks = new ArrayList<>();
            for (Linear l : model.weights().linears()) {
                ProjHook h = new ProjHook(l.in(), l.out(), r);
                l.addHook(h);
                hooks.add(h);
            }
            int bn = B * T;
            int[] tokens = new int[bn], targets = new int[bn];
            for (int i = 0; i < bn; i++) tokens[i] = r.nextInt(spec.v());
            for (int i = 0; i < bn; i++) targets[i] = i % T == T - 1 ? LmHeadLoss.IGNORE_INDEX : tokens[i + 1];
            KvCache cache = new KvCache(spec, B, T);
            Workspace ws = new Workspace(spec, B, T, T, true, 8);
            DecoderBackward bwd = new DecoderBackward(model, B, T);
            model.forward(tokens, 0, B, T, 0, cache, ws);
            bwd.lossAndBackward(new LmHeadLoss(kernels, model.weights().wte(), ws.logits, ws.chunkRows), ws, cache,
                    targets, 0, B, T);
            float[] dEmb = bwd.backward(ws, cache, B, T); // a second backward: same dEmb, hook grads doubled
            int n = bn * spec.c();
            for (ProjHook h : hooks) n += h.dp.length;
            float[] all = new float[n];
            System.arraycopy(dEmb, 0, all, 0, bn * spec.c());
            int o = bn * spec.c();
            for (ProjHook h : hooks) {
                System.arraycopy(h.dp, 0, all, o, h.dp.length);
                o += h.dp.length;
            }
            return all;
        }
    }

    /**
     * Central differences (step h) on PER_GROUP random entries, the TOP largest-gradient entries and the direction
     * of the gradient itself; fp32 forward, so tolerances are a few percent on entries, tighter on the direction.
     */
    static double check(String what, Param p, java.util.function.DoubleSupplier loss, double h, Random r) {
        int n = p.size();
        List<Integer> pick = new ArrayList<>();
        for (int i = 0; i < PER_GROUP; i++) pick.add(r.nextInt(n));
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        java.util.Arrays.sort(order, (a, b) -> Float.compare(Math.abs(p.grad(b)), Math.abs(p.grad(a))));
        for (int i = 0; i < Math.min(TOP, n); i++) pick.add(order[i]);
        var e = new GradCheck.Errors(what, 0.05);
        for (int i : pick) {
            float keep = p.get(i);
            p.set(i, keep + (float) h);
            double up = loss.getAsDouble();
            p.set(i, keep - (float) h);
            double down = loss.getAsDouble();
            p.set(i, keep);
            e.add("[" + i + "]", (up - down) / (2 * h), p.grad(i));
        }
        double rel = e.check(3e-2);
        // directional derivative along the gradient: (L(θ + εu) - L(θ - εu)) / 2ε ≈ |g| for u = g/|g|
        double norm = 0;
        for (int i = 0; i < n; i++) norm += (double) p.grad(i) * p.grad(i);
        norm = Math.sqrt(norm);
        float[] keep = new float[n];
        for (int i = 0; i < n; i++) keep[i] = p.get(i);
        for (int i = 0; i < n; i++) p.set(i, (float) (keep[i] + h * p.grad(i) / norm));
        double up = loss.getAsDouble();
        for (int i = 0; i < n; i++) p.set(i, (float) (keep[i] - h * p.grad(i) / norm));
        double down = loss.getAsDouble();
        for (int i = 0; i < n; i++) p.set(i, keep[i]);
        var d = new GradCheck.Errors(what + " (directional)", 0);
        d.add("along g", (up - down) / (2 * h), norm);
        return Math.max(rel, d.check(1e-2));
    }
}
