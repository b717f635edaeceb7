package dev.qlora4j.quant.safetensors;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Checks header entries against the data buffer as the Rust crate does: every range lies inside the data, matches
 * shape × dtype size, and the ranges sorted by offset tile the buffer exactly (no overlap, no hole, nothing left over).
 */
final class DataBufferLayout {

    private DataBufferLayout() {
    }

    /** The entries of {@code file} in storage order (by begin, then end); throws on the first violation. */
    static List<TensorInfo> validate(Path file, List<TensorInfo> entries, long dataLength) {
        for (TensorInfo e : entries) {
            String range = "data_offsets [" + e.begin() + ", " + e.end() + "]";
            if (e.begin() > e.end()) {
                throw SafetensorsException.forTensor(file, e.name(), range + " have begin > end");
            }
            if (e.end() > dataLength) {
                throw SafetensorsException.forTensor(file, e.name(), range + " lie outside the data buffer of "
                        + dataLength + " bytes (file truncated?)");
            }
            long expected = byteSize(file, e);
            if (expected != e.byteSize()) {
                throw SafetensorsException.forTensor(file, e.name(), "shape " + e.shapeString() + " × " + e.dtype() + " ("
                        + e.dtype().bytes() + " bytes) = " + expected + " bytes, but " + range + " span " + e.byteSize()
                        + " bytes");
            }
        }
        List<TensorInfo> ordered = new ArrayList<>(entries);
        ordered.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long covered = 0;
        TensorInfo previous = null;
        for (TensorInfo e : ordered) {
            if (e.begin() < covered) {
                throw SafetensorsException.forTensor(file, e.name(), "data_offsets [" + e.begin() + ", " + e.end()
                        + "] overlap tensor '" + previous.name() + "' [" + previous.begin() + ", " + previous.end() + "]");
            }
            if (e.begin() > covered) {
                throw SafetensorsException.forTensor(file, e.name(), "bytes [" + covered + ", " + e.begin()
                        + ") of the data buffer before this tensor belong to no tensor (holes are not allowed)");
            }
            covered = e.end();
            previous = e;
        }
        if (covered != dataLength) {
            throw SafetensorsException.inFile(file, "bytes [" + covered + ", " + dataLength
                    + ") at the end of the data buffer belong to no tensor (the buffer must be fully covered)");
        }
        return List.copyOf(ordered);
    }

    /** Element count × dtype size, rejecting overflow. */
    static long byteSize(Path file, TensorInfo e) {
        try {
            long n = e.dtype().bytes();
            for (long d : e.shape()) n = Math.multiplyExact(n, d);
            return n;
        } catch (ArithmeticException overflow) {
            throw SafetensorsException.forTensor(file, e.name(), "shape " + e.shapeString() + " × " + e.dtype()
                    + " overflows 64-bit byte size");
        }
    }
}
