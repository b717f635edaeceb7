package dev.qlora4j.cli;

import dev.qlora4j.quant.safetensors.SafetensorsException;
import dev.qlora4j.runtime.checkpoint.ModelDirException;
import dev.qlora4j.runtime.config.ConfigException;
import dev.qlora4j.runtime.quantize.QuantizeException;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * Base of every {@code qlora} subcommand: runs {@link #run()} and turns failures into one line on stderr and an exit
 * code. A {@link CliError}, a bad tensor file ({@link SafetensorsException}) or an I/O failure is the user's to fix:
 * its message, exit 1. Anything else is a bug: "internal error", exit 70. {@code --verbose} adds the stack trace.
 */
abstract class Subcommand implements Callable<Integer> {

    @CommandLine.ParentCommand
    QloraCommand root;

    @CommandLine.Spec
    CommandSpec spec;

    /** The work of the subcommand; returns the exit code (0 on success). */
    abstract int run() throws Exception;

    @Override
    public final Integer call() {
        try {
            return run();
        } catch (CliError | SafetensorsException | QuantizeException | ModelDirException | ConfigException
                 | IllegalArgumentException e) {
            return fail(QloraCommand.EXIT_USER_ERROR, e.getMessage(), e);
        } catch (IOException e) {
            return fail(QloraCommand.EXIT_USER_ERROR, ioMessage(e), e);
        } catch (UncheckedIOException e) {
            return fail(QloraCommand.EXIT_USER_ERROR, ioMessage(e.getCause()), e);
        } catch (OutOfMemoryError e) {
            return fail(QloraCommand.EXIT_INTERNAL, "out of memory (raise -Xmx through QLORA_JAVA_OPTS): " + e.getMessage(), e);
        } catch (Exception | LinkageError | AssertionError | StackOverflowError e) {
            return fail(QloraCommand.EXIT_INTERNAL, "internal error: " + e
                    + (verbose() ? "" : " (run again with --verbose for the stack trace)"), e);
        }
    }

    boolean verbose() {
        return root != null && root.verbose;
    }

    PrintWriter out() {
        return spec.commandLine().getOut();
    }

    PrintWriter err() {
        return spec.commandLine().getErr();
    }

    /** Prints {@code qlora <sub>: message} on stderr (plus the stack trace when verbose) and returns {@code code}. */
    int fail(int code, String message, Throwable t) {
        PrintWriter err = err();
        err.println(spec.qualifiedName() + ": " + oneLine(message));
        if (verbose() && t != null) t.printStackTrace(err);
        err.flush();
        return code;
    }

    /** Verbose progress line on stderr. */
    void note(String message) {
        if (verbose()) {
            err().println(spec.qualifiedName() + ": " + message);
            err().flush();
        }
    }

    /**
     * Refuses an output path that cannot be made before any work starts: the nearest part of it that exists must be
     * a directory we may write to (e.g. {@code --out results.txt/run} or {@code --out /root/run} as another user).
     */
    static void checkCreatable(String flag, Path out) {
        Path p = out.toAbsolutePath().normalize();
        Path q = p;
        while (q != null && !Files.exists(q)) q = q.getParent();
        if (q == null) return;
        if (!Files.isDirectory(q)) {
            throw new CliError(flag + " " + out + ": " + (q.equals(p) ? "exists and is not a directory"
                    : "cannot be created, " + q + " is a file"));
        }
        if (!Files.isWritable(q)) {
            throw new CliError(flag + " " + out + ": " + (q.equals(p) ? "not writable" : "cannot be created, " + q
                    + " is not writable"));
        }
    }

    static String oneLine(String s) {
        if (s == null) return "(no message)";
        return s.replace("\r", "").replace('\n', ' ').strip();
    }

    static String ioMessage(IOException e) {
        return switch (e) {
            case NoSuchFileException n -> n.getFile() + ": no such file or directory";
            case AccessDeniedException a -> a.getFile() + ": permission denied";
            case FileSystemException f -> f.getFile() + ": " + (f.getReason() != null ? f.getReason() : f.getClass().getSimpleName());
            default -> e.getMessage() != null ? e.getMessage() : e.toString();
        };
    }
}
