package dev.qlora4j.quant.codec;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads the golden files written by {@code quant/src/test/python/gen_quant_golden.py} (an independent torch/numpy
 * implementation of the bitsandbytes algorithms): {@code manifest.json} plus raw little-endian {@code .bin} files.
 */
final class GoldenFiles {

    static final Path DIR = locate();

    private GoldenFiles() {
    }

    private static Path locate() {
        try {
            var url = GoldenFiles.class.getResource("/golden/quant/manifest.json");
            if (url == null) throw new IllegalStateException("golden/quant/manifest.json not on the test classpath");
            return Path.of(url.toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static JsonNode manifest() {
        try {
            return new ObjectMapper().readTree(DIR.resolve("manifest.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static byte[] bytes(String file) {
        try {
            return Files.readAllBytes(DIR.resolve(file));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static float[] f32(String file) {
        ByteBuffer bb = ByteBuffer.wrap(bytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        float[] v = new float[bb.remaining() / 4]; // (bytes/4)
        bb.asFloatBuffer().get(v);
        return v;
    }

    /** Decodes a golden input stored as F32, F16 or BF16 to float32 (both widenings are exact). */
    static float[] input(String file, String dtype) {
        ByteBuffer bb = ByteBuffer.wrap(bytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        return switch (dtype) {
            case "F32" -> f32(file);
            case "F16", "BF16" -> {
                float[] v = new float[bb.remaining() / 2]; // (bytes/2)
                for (int i = 0; i < v.length; i++) {
                    short s = bb.getShort(2 * i);
                    v[i] = dtype.equals("F16") ? Float.float16ToFloat(s) : Float.intBitsToFloat((s & 0xffff) << 16);
                }
                yield v;
            }
            default -> throw new IllegalArgumentException("golden input dtype " + dtype);
        };
    }
}
