package dev.qlora4j.quant.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The writer's bytes equal {@code writer-golden.safetensors}, written by the independent struct+json script
 * {@code quant/src/test/python/write_safetensors_fixture.py} (its TENSORS list and this test must agree).
 */
class SafetensorsWriterGoldenTest {

    private static final String NAIVE = "na\u00efve \"quote\"\t\u0001\\";

    @TempDir
    Path dir;

    private static byte[] golden() throws Exception {
        try (InputStream in = SafetensorsWriterGoldenTest.class.getResourceAsStream("/safetensors/writer-golden.safetensors")) {
            return in.readAllBytes();
        }
    }

    private static byte[] le(int bytes, java.util.function.Consumer<ByteBuffer> fill) {
        ByteBuffer b = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        fill.accept(b);
        return b.array();
    }

    @Test
    void writerOutputEqualsIndependentPythonWriter() throws Exception {
        Path p = dir.resolve("out.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ids = arena.allocate(32); // native segment: the zero-copy write path
            long[] idValues = {1, -2, 1L << 40, -(1L << 62)};
            for (int i = 0; i < 4; i++) ids.setAtIndex(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i, idValues[i]);
            float[] zeta = new float[6];
            for (int i = 0; i < 6; i++) zeta[i] = i * 0.25f - 0.5f;
            new SafetensorsWriter()
                    .metadata("format", "pt").metadata("author", "qlora4j test")
                    .add("zeta.f32", new long[] {2, 3}, zeta)
                    .add("alpha.f32", new long[] {3}, new float[] {1.5f, -2.0f, 3.1415927f})
                    .add("empty", new long[] {0}, new float[0])
                    .add(NAIVE, new long[] {1}, new float[] {42f})
                    .add("mid.bf16", DType.BF16, new long[] {5}, new float[] {0.1f, 1f / 3f, -2.7182817f, 65504f, 1e-3f})
                    .add("mid.f16", DType.F16, new long[] {2, 2}, new float[] {0.1f, -1f / 3f, 1024.5f, 6.1e-5f})
                    .add("ids", DType.I64, new long[] {4}, ids)
                    .add("counts", new long[] {3}, new int[] {7, -8, Integer.MAX_VALUE})
                    .add("scalar", DType.F64, new long[0], le(8, b -> b.putDouble(2.5)))
                    .add("mask", DType.BOOL, new long[] {4}, new byte[] {1, 0, 0, 1})
                    .add("bytes", DType.U8, new long[] {3}, new byte[] {0, (byte) 128, (byte) 255})
                    .add("i8", DType.I8, new long[] {2}, new byte[] {-1, 5})
                    .add("i16", DType.I16, new long[] {1}, le(2, b -> b.putShort((short) -300)))
                    .add("u16", DType.U16, new long[] {2}, le(4, b -> b.putShort((short) 1).putShort((short) 65535)))
                    .add("u32", DType.U32, new long[] {1}, le(4, b -> b.putInt((int) 4_000_000_000L)))
                    .add("u64", DType.U64, new long[] {1}, le(8, b -> b.putLong(-1L)))
                    .add("f8.e5m2", DType.F8_E5M2, new long[] {2}, new byte[] {0x3C, (byte) 0xBC})
                    .add("f8.e4m3", DType.F8_E4M3, new long[] {2}, new byte[] {0x38, (byte) 0xB8})
                    .write(p);
        }
        byte[] expected = golden();
        byte[] actual = Files.readAllBytes(p);
        assertEquals(expected.length, actual.length, "file size");
        assertArrayEquals(expected, actual);
    }

    @Test
    void goldenFileReadsBack() throws Exception {
        Path p = Files.write(dir.resolve("golden.safetensors"), golden());
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(18, f.names().size());
            assertEquals("u64", f.names().getFirst());
            assertEquals("mask", f.names().getLast());
            assertArrayEquals(new float[] {42f}, f.readFloats(NAIVE));
            assertArrayEquals(new float[] {1.5f, -2.0f, 3.1415927f}, f.readFloats("alpha.f32"));
            assertEquals("pt", f.metadata().get("format"));
            // torch's float16 of 0.1 is 0x2E66; bfloat16 of 0.1 is 0x3DCD (round to nearest even)
            assertEquals((short) 0x2E66, f.segment("mid.f16").get(FloatTensorCodec.U16_LE, 0));
            assertEquals((short) 0x3DCD, f.segment("mid.bf16").get(FloatTensorCodec.U16_LE, 0));
        }
    }
}
