package dev.qlora4j.lora.optim;

/**
 * A named stretch {@code [offset, offset+length)} of the contiguous trainable buffer — one parameter tensor, as
 * torch sees it. {@code decay} says whether AdamW's decoupled weight decay applies (matrices yes; biases,
 * LayerNorm params no, as HF's Trainer groups them).
 */
public record ParamSlice(String name, int offset, int length, boolean decay) {

    public ParamSlice {
        if (name == null || name.isEmpty()) throw new IllegalArgumentException("param slice needs a name");
        if (offset < 0 || length < 0) throw new IllegalArgumentException("param slice '" + name + "': offset " + offset + ", length " + length);
    }

    public int end() {
        return offset + length;
    }
}
