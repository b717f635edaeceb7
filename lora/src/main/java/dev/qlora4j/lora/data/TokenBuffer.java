package dev.qlora4j.lora.data;

import java.util.Arrays;

/** A growable int array for token streams. */
final class TokenBuffer {

    private int[] a = new int[1024];
    private int n;

    void add(int v) {
        if (n == a.length) a = Arrays.copyOf(a, grow(n + 1));
        a[n++] = v;
    }

    void addAll(int[] v) {
        if (n + v.length > a.length) a = Arrays.copyOf(a, grow(n + v.length));
        System.arraycopy(v, 0, a, n, v.length);
        n += v.length;
    }

    int size() {
        return n;
    }

    int[] toArray() {
        return Arrays.copyOf(a, n);
    }

    private int grow(int need) {
        long cap = Math.max(need, (long) a.length * 3 / 2);
        if (cap > Integer.MAX_VALUE - 16) {
            if (need > Integer.MAX_VALUE - 16) throw new IllegalStateException("more than 2^31 tokens");
            cap = Integer.MAX_VALUE - 16;
        }
        return (int) cap;
    }
}
