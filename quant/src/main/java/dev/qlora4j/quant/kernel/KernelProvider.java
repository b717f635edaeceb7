package dev.qlora4j.quant.kernel;

import java.lang.management.ManagementFactory;

/**
 * Chooses the {@link Kernels} once per process: {@code -Dqlora.kernels=scalar|panama} (cuda later); by default
 * {@code panama} when {@code jdk.incubator.vector} is readable and C2 is on, else {@code scalar} with a one-line
 * notice on stderr. {@code PanamaKernels} is loaded reflectively, so a JVM without the incubator module never sees
 * a {@link NoClassDefFoundError}.
 */
public final class KernelProvider {

    private static final String PANAMA_CLASS = "dev.qlora4j.quant.kernel.PanamaKernels";

    private KernelProvider() {
    }

    private static final class Holder {
        static final Kernels INSTANCE = create(System.getProperty("qlora.kernels", ""));
    }

    /** The process-wide kernels. */
    public static Kernels get() {
        return Holder.INSTANCE;
    }

    /** A fresh instance by name ("scalar", "panama"; "" picks the default); throws when it cannot be had. */
    public static Kernels create(String name) {
        return switch (name.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "scalar" -> new ScalarKernels();
            case "panama" -> {
                String why = panamaUnavailableReason();
                if (why != null) throw new IllegalStateException("qlora.kernels=panama: " + why);
                yield loadPanama();
            }
            case "cuda" -> throw new UnsupportedOperationException(
                    "qlora.kernels=cuda: this build has no CUDA provider yet; use scalar or panama");
            case "" -> {
                String why = panamaUnavailableReason();
                if (why == null) {
                    try {
                        yield loadPanama();
                    } catch (RuntimeException | LinkageError e) {
                        why = e.toString();
                    }
                }
                System.err.println("qlora4j: using scalar kernels (" + why + ")");
                yield new ScalarKernels();
            }
            default -> throw new IllegalArgumentException("qlora.kernels=" + name + ": expected scalar, panama or cuda");
        };
    }

    /** Null when the Vector API kernels can run fast here, else why not. */
    static String panamaUnavailableReason() {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            return "jdk.incubator.vector is not in the boot layer; add --add-modules jdk.incubator.vector";
        }
        if (!c2Enabled()) return "the C2 compiler is off, and the Vector API is slow without it";
        return null;
    }

    private static boolean c2Enabled() {
        var args = ManagementFactory.getRuntimeMXBean().getInputArguments();
        for (String a : args) {
            if (a.equals("-Xint") || a.startsWith("-XX:TieredStopAtLevel=") && !a.endsWith("=4")
                    || a.equals("-XX:-UseCompiler")) {
                return false;
            }
        }
        String vmName = System.getProperty("java.vm.name", "");
        return !vmName.contains("Client") && !vmName.contains("Zero");
    }

    private static Kernels loadPanama() {
        try {
            return (Kernels) Class.forName(PANAMA_CLASS).getConstructor().newInstance();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot load " + PANAMA_CLASS + ": " + e, e);
        }
    }
}
