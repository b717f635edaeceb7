package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class KernelProviderTest {

    @Test
    void namedKernels() {
        assertInstanceOf(ScalarKernels.class, KernelProvider.create("scalar"));
        assertEquals("panama", KernelProvider.create("panama").name()); // the test JVM has jdk.incubator.vector
        assertEquals("panama", KernelProvider.create("").name());
        assertNotNull(KernelProvider.get());
        assertThrows(IllegalArgumentException.class, () -> KernelProvider.create("gpu"));
        assertThrows(UnsupportedOperationException.class, () -> KernelProvider.create("cuda"));
    }

    @Test
    void vectorWidths() {
        for (int bits : new int[] {128, 256, 512}) assertEquals(bits, new PanamaKernels(bits).vectorBits());
        assertThrows(IllegalArgumentException.class, () -> new PanamaKernels(64));
    }
}
