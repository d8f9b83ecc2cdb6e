package dev.goldfinch.cli;

import dev.goldfinch.model.GoldFinchException;
import java.io.PrintWriter;
import java.net.BindException;
import java.nio.file.NoSuchFileException;
import java.util.Arrays;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/** The {@code goldfinch} command line: one subcommand per task, errors as one line on stderr and a non-zero exit. */
@Command(
        name = "goldfinch",
        mixinStandardHelpOptions = true,
        version = "goldfinch 0.1.0",
        description = "GoldFinch / Finch (RWKV-6) inference engine and mesh.",
        subcommands = {
            GenerateCommand.class,
            TokenizeCommand.class,
            DetokenizeCommand.class,
            LogitsCommand.class,
            ConvertCommand.class,
            InspectCommand.class,
            ServeCommand.class,
            StateCommand.class,
            BenchCommand.class,
            CommandLine.HelpCommand.class
        })
public final class GoldfinchCli {
    /** Exit code for bad input or a bad model file (as opposed to an internal failure, 1). */
    static final int EXIT_BAD_INPUT = 2;

    @Option(
            names = "--verbose",
            scope = ScopeType.INHERIT,
            description = "On failure, print the stack trace too (any subcommand).")
    boolean verbose;

    private GoldfinchCli() {}

    public static void main(String[] args) {
        System.exit(run(args));
    }

    static int run(String... args) {
        CommandLine cli = new CommandLine(new GoldfinchCli());
        boolean verbose = Arrays.asList(args).contains("--verbose");
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            PrintWriter err = cmd.getErr();
            String line = oneLine(e);
            err.println("error: " + line);
            if (verbose) {
                e.printStackTrace(err);
            } else if (!(e instanceof GoldFinchException)) {
                err.println("(run again with --verbose for the stack trace)");
            }
            err.flush();
            return e instanceof GoldFinchException || line != null && !line.startsWith("internal") ? EXIT_BAD_INPUT : 1;
        });
        return cli.execute(args);
    }

    /**
     * A failure as one line that says what to do: the typed errors as they are, the environment's usual
     * troubles (a port in use, a missing file) with their fix, anything else as an internal error.
     */
    static String oneLine(Throwable e) {
        if (e instanceof GoldFinchException) {
            return e.getMessage();
        }
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof BindException
                    || t.getClass().getName().equals("org.springframework.boot.web.server.PortInUseException")) {
                return "a port is already in use (" + t.getMessage()
                        + "): stop what listens there, or choose others with --port and --grpc-port";
            }
            if (t instanceof NoSuchFileException missing) {
                return "no such file: " + missing.getFile();
            }
            if (t instanceof GoldFinchException typed) {
                return typed.getMessage();
            }
        }
        return "internal: " + e;
    }
}
