package dev.qlora4j.cli;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongSupplier;

/**
 * Ctrl-C (SIGINT) and SIGTERM while some work runs: instead of dying mid-step, the JVM's shutdown hook sets a flag
 * that the worker checks between units of work ({@link #requested()}), then waits — a bounded time —
 * until the worker has saved its state and {@link #close() closed} this object. The process then exits as the signal
 * says (130 for SIGINT, 143 for SIGTERM: 128 + the signal number, what shells and supervisors expect).
 * <p>
 * Use as {@code try (GracefulStop stop = GracefulStop.install(...)) { ... }}: outside the block, a signal ends the
 * process at once as usual.
 */
final class GracefulStop implements AutoCloseable {
    private final AtomicBoolean requested = new AtomicBoolean();
    private final CountDownLatch closed = new CountDownLatch(1);
    private final Thread hook;

    private GracefulStop(Runnable onSignal, LongSupplier maxWaitMillis) {
        hook = new Thread(() -> {
            requested.set(true);
            try {
                if (onSignal != null) onSignal.run();
            } catch (RuntimeException ignored) {
                // the message is a courtesy; saving matters more
            }
            try {
                closed.await(maxWaitMillis.getAsLong(), TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "qlora-graceful-stop");
    }

    /**
     * Registers the shutdown hook.
     *
     * @param onSignal      runs on the hook's thread when a signal arrives (e.g. prints "stopping after this step")
     * @param maxWaitMillis how long the hook waits for {@link #close()} before letting the JVM exit anyway (asked when
     *                      the signal comes: it may depend on how long a unit of work takes)
     */
    static GracefulStop install(Runnable onSignal, LongSupplier maxWaitMillis) {
        GracefulStop s = new GracefulStop(onSignal, maxWaitMillis);
        Runtime.getRuntime().addShutdownHook(s.hook);
        return s;
    }

    /** Whether a signal asked the work to stop. */
    boolean requested() {
        return requested.get();
    }

    /** The work is saved: lets a waiting shutdown proceed, or unregisters the hook when no signal came. */
    @Override
    public void close() {
        closed.countDown();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the hook is running (or ran): it returns now that the latch is open
        }
    }
}
