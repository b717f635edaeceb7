package dev.qlora4j.lora.data;

/** Some examples of a parent set, by index (a train or eval split). */
public final class ExampleSubset implements Examples {

    private final Examples parent;
    private final int[] indices;

    public ExampleSubset(Examples parent, int[] indices) {
        for (int i : indices) java.util.Objects.checkIndex(i, parent.size());
        this.parent = parent;
        this.indices = indices.clone();
    }

    @Override
    public int size() {
        return indices.length;
    }

    @Override
    public int seqLen() {
        return parent.seqLen();
    }

    /** The parent index of example {@code i}. */
    public int parentIndex(int i) {
        return indices[i];
    }

    @Override
    public void copyTo(int index, int[] inputs, int[] targets, int off) {
        parent.copyTo(indices[index], inputs, targets, off);
    }

    @Override
    public int targetCount(int index) {
        return parent.targetCount(indices[index]);
    }
}
