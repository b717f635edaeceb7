package dev.qlora4j.lora.data;

/**
 * An endless stream of training batches: every epoch visits each example once in a seeded random order (a pure
 * function of seed and epoch number); a batch that runs past the end of an epoch continues with the next epoch's
 * order, so every batch is full. {@link #next} allocates nothing; {@link #position} / {@link #seek} save and
 * restore the exact place for checkpoint/resume.
 */
public final class Batches {

    private final Examples examples;
    private final int batchSize;
    private final long seed;
    private final int[] order; // (N) this epoch's order
    private int epoch;
    private int index;
    private long fingerprint;
    private boolean fingerprinted;

    public Batches(Examples examples, int batchSize, long seed) throws DataException {
        if (batchSize < 1) throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
        if (examples.size() == 0) throw new DataException("empty dataset: no training examples to batch");
        this.examples = examples;
        this.batchSize = batchSize;
        this.seed = seed;
        this.order = new int[examples.size()];
        startEpoch(0);
    }

    /** A batch sized for this stream. */
    public Batch newBatch() {
        return new Batch(batchSize, examples.seqLen());
    }

    /** Fills {@code b} with the next B examples. */
    public void next(Batch b) {
        b.checkSeqLen(examples);
        if (b.batchSize != batchSize) throw new IllegalArgumentException("batch holds " + b.batchSize + " rows, the stream makes " + batchSize);
        int t = examples.seqLen();
        b.targetCount = 0;
        for (int r = 0; r < batchSize; r++) {
            if (index == order.length) startEpoch(epoch + 1);
            int ex = order[index++];
            examples.copyTo(ex, b.inputs, b.targets, r * t);
            b.targetCount += examples.targetCount(ex);
        }
        b.rows = batchSize;
    }

    /** The epoch the next example comes from (0-based). */
    public int epoch() {
        return epoch;
    }

    /** Epochs done, fractionally (HF's {@code epoch} in logs). */
    public double epochsDone() {
        return epoch + (double) index / order.length;
    }

    /** Batches per epoch, rounded up. */
    public int batchesPerEpoch() {
        return (order.length + batchSize - 1) / batchSize;
    }

    public Examples examples() {
        return examples;
    }

    public DataPosition position() {
        return new DataPosition(seed, epoch, index, order.length, fingerprint());
    }

    /** Continues from a saved position; refuses one saved with another seed or other data. */
    public void seek(DataPosition p) throws DataException {
        if (p.seed() != seed) throw new DataException("data position was saved with seed " + p.seed() + ", this run uses seed " + seed);
        if (p.examples() != order.length || p.fingerprint() != fingerprint())
            throw new DataException("data position was saved for another training set (" + p.examples() + " examples, fingerprint "
                    + Long.toHexString(p.fingerprint()) + "; now " + order.length + ", " + Long.toHexString(fingerprint()) + ")");
        if (p.epoch() < 0 || p.index() < 0 || p.index() > order.length) throw new DataException("data position out of range: " + p);
        startEpoch(p.epoch());
        index = p.index();
    }

    private void startEpoch(int e) {
        epoch = e;
        index = 0;
        Shuffle.permutation(seed, e, order);
    }

    private long fingerprint() {
        if (!fingerprinted) {
            fingerprint = examples.fingerprint();
            fingerprinted = true;
        }
        return fingerprint;
    }
}
