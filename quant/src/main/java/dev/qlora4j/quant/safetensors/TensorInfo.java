package dev.qlora4j.quant.safetensors;

import java.util.Arrays;

/**
 * One tensor's header entry: name, dtype, shape and byte range {@code [begin, end)} relative to the data start.
 */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {

    public long elementCount() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    public long byteSize() {
        return end - begin;
    }

    public int rank() {
        return shape.length;
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }
}
