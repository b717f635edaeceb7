package dev.qlora4j.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.InputStream;
import java.io.PrintWriter;
import java.util.Properties;

/**
 * The {@code qlora} command: {@code quantize}, {@code inspect}, {@code train}, {@code merge}, {@code generate} and {@code eval} (demo follows).
 * Exit codes: 0 success, 1 user error (message names the flag, path or file), 2 bad usage (unknown flag, bad flag
 * value), 70 internal error, 130 (Ctrl-C) or 143 (SIGTERM) when training stopped after saving a checkpoint.
 */
@Command(name = "qlora",
        mixinStandardHelpOptions = true,
        versionProvider = QloraCommand.Version.class,
        description = "QLoRA fine-tuning on the CPU: 4/8-bit frozen base weights, fp32 LoRA adapters.",
        subcommands = {QuantizeCommand.class, InspectCommand.class, TrainCommand.class, MergeCommand.class,
                GenerateCommand.class, EvalCommand.class, InitCommand.class, DemoCommand.class,
                CommandLine.HelpCommand.class},
        modelTransformer = QloraCommand.Configure.class,
        usageHelpAutoWidth = true)
public final class QloraCommand implements Runnable {

    public static final int EXIT_OK = 0;
    public static final int EXIT_USER_ERROR = 1;
    public static final int EXIT_USAGE = 2;
    public static final int EXIT_INTERNAL = 70;
    /** Stopped by Ctrl-C after saving its state (128 + SIGINT); a SIGTERM'd process exits 143 as the JVM sets it. */
    public static final int EXIT_INTERRUPTED = 130;

    @Option(names = "--verbose", scope = CommandLine.ScopeType.INHERIT,
            description = "Print progress and, on failure, the stack trace.")
    boolean verbose;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /**
     * Runs once the {@link CommandLine} is built: installs the one-line error handlers, so that
     * {@code new CommandLine(new QloraCommand())} behaves exactly like the launcher.
     */
    static final class Configure implements CommandLine.IModelTransformer {
        @Override
        public CommandLine.Model.CommandSpec transform(CommandLine.Model.CommandSpec spec) {
            if (spec.commandLine() != null) configure(spec.commandLine());
            return spec;
        }
    }

    public static void main(String[] args) {
        System.exit(newCommandLine().execute(args));
    }

    /** The configured command line, as {@code main} runs it. */
    public static CommandLine newCommandLine() {
        return configure(new CommandLine(new QloraCommand()));
    }

    static CommandLine configure(CommandLine cl) {
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setParameterExceptionHandler(QloraCommand::usageError);
        cl.setExecutionExceptionHandler((e, c, parsed) -> {
            // subcommands handle their own failures; this catches the rest (e.g. in help rendering)
            c.getErr().println(c.getCommandSpec().qualifiedName() + ": internal error: " + e);
            if (c.getCommandSpec().root().userObject() instanceof QloraCommand q && q.verbose) e.printStackTrace(c.getErr());
            return EXIT_INTERNAL;
        });
        return cl;
    }

    /** One line naming the problem, one line pointing at the help: not the whole usage text. */
    static int usageError(CommandLine.ParameterException e, String[] args) {
        CommandLine c = e.getCommandLine();
        PrintWriter err = c.getErr();
        String name = c.getCommandSpec().qualifiedName();
        String message = e.getMessage();
        if (e instanceof CommandLine.MissingParameterException) {
            // a mistyped flag (--outdir) also leaves a required one missing: name the mistyped one, it is the cause
            for (String a : args) {
                String flag = a.contains("=") ? a.substring(0, a.indexOf('=')) : a;
                if (flag.startsWith("-") && flag.length() > 1 && !flag.matches("-\\d.*")
                        && c.getCommandSpec().findOption(flag) == null && !c.getSubcommands().containsKey(flag)) {
                    message = "Unknown option: '" + flag + "' (" + Subcommand.oneLine(message) + ")";
                    break;
                }
            }
        }
        err.println(name + ": " + Subcommand.oneLine(message));
        CommandLine.UnmatchedArgumentException.printSuggestions(e, err);
        err.println("Try '" + name + " --help' for more information.");
        err.flush();
        return EXIT_USAGE;
    }

    @Override
    public void run() {
        // `qlora` alone: show what there is to run
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[]{"qlora4j " + version(),
                    "Java " + Runtime.version() + " (" + System.getProperty("java.vendor", "?") + "), "
                            + System.getProperty("os.name") + " " + System.getProperty("os.arch") + ", "
                            + Runtime.getRuntime().availableProcessors() + " CPUs"};
        }

        static String version() {
            try (InputStream in = QloraCommand.class.getResourceAsStream(
                    "/META-INF/maven/dev.qlora4j/qlora4j-cli/pom.properties")) {
                if (in != null) {
                    Properties p = new Properties();
                    p.load(in);
                    return p.getProperty("version", "dev");
                }
            } catch (Exception ignored) {
                // fall through
            }
            String v = QloraCommand.class.getPackage().getImplementationVersion();
            return v != null ? v : "0.1.0-SNAPSHOT (dev build)";
        }
    }
}
