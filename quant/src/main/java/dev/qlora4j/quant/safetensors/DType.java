package dev.qlora4j.quant.safetensors;

/** safetensors dtypes (names as they appear in the header) and their element sizes in bytes. */
public enum DType {
    BOOL(1), U8(1), I8(1), F8_E5M2(1), F8_E4M3(1), I16(2), U16(2), F16(2), BF16(2), I32(4), U32(4), F32(4),
    F64(8), I64(8), U64(8);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    /** The dtype named {@code name} in a safetensors header, or {@code null} when unknown. */
    public static DType byName(String name) {
        for (DType d : values()) if (d.name().equals(name)) return d;
        return null;
    }
}
