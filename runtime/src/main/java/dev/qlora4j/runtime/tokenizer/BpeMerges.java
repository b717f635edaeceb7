package dev.qlora4j.runtime.tokenizer;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Merge ranks over token ids: pair (left, right) → rank, and rank → merged id. Applies them the
 * way HF's {@code Word::merge_all} does (lowest rank first, leftmost first among equal ranks),
 * which gives the same result as GPT-2's original loop but in O(n log n) for long words.
 */
final class BpeMerges {

    private static final long EMPTY = -1L;

    // Open-addressing table: key (left << 32 | right) → rank.
    private final long[] keys;
    private final int[] ranks;
    private final int mask;
    private final int[] mergedId; // (number of merges) rank → id of left+right

    /** @param merges pairs of token strings in rank order; both parts and their concatenation must be in vocab */
    BpeMerges(List<String[]> merges, Map<String, Integer> vocab) {
        int cap = Integer.highestOneBit(Math.max(4, merges.size() * 2)) << 1;
        keys = new long[cap];
        Arrays.fill(keys, EMPTY);
        ranks = new int[cap];
        mask = cap - 1;
        mergedId = new int[merges.size()];
        for (int r = 0; r < merges.size(); r++) {
            String[] m = merges.get(r);
            Integer a = vocab.get(m[0]), b = vocab.get(m[1]), ab = vocab.get(m[0] + m[1]);
            if (a == null || b == null) throw new IllegalArgumentException("merge " + (r + 1) + " '" + m[0] + " " + m[1] + "': part not in vocab");
            if (ab == null) throw new IllegalArgumentException("merge " + (r + 1) + " '" + m[0] + " " + m[1] + "': result not in vocab");
            mergedId[r] = ab;
            long key = key(a, b);
            int slot = slot(key);
            if (keys[slot] == key) continue; // duplicate merge: the first (lowest) rank wins, as in HF
            keys[slot] = key;
            ranks[slot] = r;
        }
    }

    int size() {
        return mergedId.length;
    }

    private static long key(int a, int b) {
        return ((long) a << 32) | (b & 0xFFFFFFFFL);
    }

    private int slot(long key) {
        int h = (int) (key ^ (key >>> 29)) * 0x9E3779B9;
        int i = (h ^ (h >>> 16)) & mask;
        while (keys[i] != EMPTY && keys[i] != key) i = (i + 1) & mask;
        return i;
    }

    /** The rank of merging (a, b), or -1. */
    int rank(int a, int b) {
        long key = key(a, b);
        int i = slot(key);
        return keys[i] == key ? ranks[i] : -1;
    }

    /** Merges {@code ids[0..n)} in place; returns the merged ids. */
    int[] apply(int[] ids, int n) {
        if (n < 2) return Arrays.copyOf(ids, n);
        if (n == 2) {
            int r = rank(ids[0], ids[1]);
            return r < 0 ? Arrays.copyOf(ids, 2) : new int[] {mergedId[r]};
        }
        int[] prev = new int[n], next = new int[n];
        for (int i = 0; i < n; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        LongHeap heap = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            int r = rank(ids[i], ids[i + 1]);
            if (r >= 0) heap.push(((long) r << 32) | i);
        }
        int alive = n;
        while (!heap.isEmpty()) {
            long e = heap.pop();
            int r = (int) (e >>> 32), pos = (int) e;
            if (ids[pos] < 0) continue; // absorbed into its left neighbour
            int nx = next[pos];
            if (nx < 0 || rank(ids[pos], ids[nx]) != r) continue; // stale entry
            ids[pos] = mergedId[r];
            ids[nx] = -1;
            alive--;
            int nn = next[nx];
            next[pos] = nn;
            if (nn >= 0) prev[nn] = pos;
            int pv = prev[pos];
            if (pv >= 0) {
                int r2 = rank(ids[pv], ids[pos]);
                if (r2 >= 0) heap.push(((long) r2 << 32) | pv);
            }
            if (nn >= 0) {
                int r2 = rank(ids[pos], ids[nn]);
                if (r2 >= 0) heap.push(((long) r2 << 32) | pos);
            }
        }
        int[] out = new int[alive];
        for (int i = 0, k = 0; i >= 0; i = next[i]) out[k++] = ids[i];
        return out;
    }

    /** Binary min-heap of longs (rank in the high half, position in the low half). */
    private static final class LongHeap {
        private long[] a;
        private int size;

        LongHeap(int cap) {
            a = new long[Math.max(4, cap)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        void push(long v) {
            if (size == a.length) a = Arrays.copyOf(a, size * 2);
            int i = size++;
            while (i > 0) {
                int p = (i - 1) >>> 1;
                if (a[p] <= v) break;
                a[i] = a[p];
                i = p;
            }
            a[i] = v;
        }

        long pop() {
            long top = a[0];
            long v = a[--size];
            int i = 0;
            while (true) {
                int c = 2 * i + 1;
                if (c >= size) break;
                if (c + 1 < size && a[c + 1] < a[c]) c++;
                if (a[c] >= v) break;
                a[i] = a[c];
                i = c;
            }
            a[i] = v;
            return top;
        }
    }
}
