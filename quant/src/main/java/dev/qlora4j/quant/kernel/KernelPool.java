package dev.qlora4j.quant.kernel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One fixed set of compute threads, sized to the physical cores ({@code -Dqlora.threads=N} overrides). A call to
 * {@link #run} hands out tile indexes {@code [0, tiles)} to the calling thread (slot 0) and the workers (slots
 * {@code 1..threads-1}) through one atomic counter; the slot lets a kernel use per-thread scratch without locking.
 * Idle workers spin briefly, then park. One job runs at a time; nothing is allocated per call.
 */
public final class KernelPool {

    /** A job cut into tiles; {@code slot} is the thread's index in {@code [0, threads)}, for its scratch. */
    @FunctionalInterface
    public interface TileJob {
        void run(int tile, int slot);
    }

    private static final long SPIN_NANOS = 50_000; // idle workers spin this long before parking

    private static volatile KernelPool shared;

    private final int threads;
    private final Worker[] workers; // (threads - 1)
    private final ReentrantLock lock = new ReentrantLock();
    private final AtomicInteger nextTile = new AtomicInteger();
    private final AtomicInteger busyWorkers = new AtomicInteger();
    private volatile long generation;
    private volatile TileJob job;
    private volatile int tiles;
    private volatile Throwable failure;
    private volatile Thread caller;
    private volatile boolean callerParked;

    public KernelPool(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads " + threads);
        this.threads = threads;
        this.workers = new Worker[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
            workers[i].thread.start();
        }
    }

    /** The process-wide pool, created on first use. */
    public static KernelPool shared() {
        KernelPool p = shared;
        if (p == null) {
            synchronized (KernelPool.class) {
                p = shared;
                if (p == null) shared = p = new KernelPool(defaultThreads());
            }
        }
        return p;
    }

    /** {@code -Dqlora.threads}, else the number of physical cores (logical CPUs halved when SMT is active). */
    public static int defaultThreads() {
        Integer forced = Integer.getInteger("qlora.threads");
        if (forced != null && forced > 0) return forced;
        int cpus = Runtime.getRuntime().availableProcessors();
        try {
            Path smt = Path.of("/sys/devices/system/cpu/smt/active");
            if (cpus > 1 && Files.isReadable(smt) && Files.readString(smt).trim().equals("1")) return cpus / 2;
        } catch (Exception ignored) {
            // not Linux or not readable: logical CPUs it is
        }
        return cpus;
    }

    public int threads() {
        return threads;
    }

    /** Runs {@code job} for every tile in {@code [0, tiles)}, on all threads, and returns when all are done. */
    public void run(int tiles, TileJob job) {
        lock.lock();
        try {
            if (tiles <= 1 || workers.length == 0) {
                for (int t = 0; t < tiles; t++) job.run(t, 0);
                return;
            }
            this.job = job;
            this.tiles = tiles;
            this.caller = Thread.currentThread();
            this.failure = null;
            nextTile.set(0);
            busyWorkers.set(workers.length); // every worker takes part (a spinning one sees the new generation anyway)
            generation++; // publishes the job (volatile write after the plain fields)
            for (Worker w : workers) w.wake();
            try {
                drain(job, tiles, 0);
            } catch (Throwable t) { // stop handing out tiles, but let the workers finish before the next job
                failure = t;
                nextTile.set(Integer.MAX_VALUE / 2);
            }
            long start = System.nanoTime();
            while (busyWorkers.get() != 0) { // spin briefly, then park until the last worker unparks us
                if (System.nanoTime() - start < SPIN_NANOS) {
                    Thread.onSpinWait();
                } else {
                    callerParked = true;
                    if (busyWorkers.get() != 0) LockSupport.parkNanos(this, 100_000);
                    callerParked = false;
                }
            }
            this.job = null;
            Throwable f = failure;
            if (f != null) {
                if (f instanceof RuntimeException re) throw re;
                if (f instanceof Error e) throw e;
                throw new RuntimeException(f);
            }
        } finally {
            lock.unlock();
        }
    }

    private void drain(TileJob job, int tiles, int slot) {
        for (int t; (t = nextTile.getAndIncrement()) < tiles; ) job.run(t, slot);
    }

    private final class Worker implements Runnable {
        final int slot;
        final Thread thread;
        volatile boolean parked;
        private long seen;

        Worker(int slot) {
            this.slot = slot;
            this.thread = new Thread(this, "qlora-kernel-" + slot);
            thread.setDaemon(true);
        }

        void wake() {
            if (parked) LockSupport.unpark(thread);
        }

        @Override
        public void run() {
            while (true) {
                awaitJob();
                try {
                    drain(job, tiles, slot);
                } catch (Throwable t) {
                    failure = t;
                    nextTile.set(Integer.MAX_VALUE / 2);
                } finally {
                    if (busyWorkers.decrementAndGet() == 0 && callerParked) LockSupport.unpark(caller);
                }
            }
        }

        private void awaitJob() {
            long start = System.nanoTime();
            while (generation == seen) {
                if (System.nanoTime() - start < SPIN_NANOS) {
                    Thread.onSpinWait();
                } else {
                    parked = true;
                    if (generation == seen) LockSupport.park(this);
                    parked = false;
                }
            }
            seen = generation;
        }
    }
}
