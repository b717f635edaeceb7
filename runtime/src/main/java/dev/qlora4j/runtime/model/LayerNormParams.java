package dev.qlora4j.runtime.model;

/** LayerNorm γ (C), β (C) and ε; small, so held as fp32 arrays. */
public record LayerNormParams(float[] gamma, float[] beta, float eps) {
    public LayerNormParams {
        if (gamma.length != beta.length) throw new IllegalArgumentException("LayerNorm γ and β differ in size");
    }
}
