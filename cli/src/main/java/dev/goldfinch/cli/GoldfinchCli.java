package dev.goldfinch.cli;

import dev.goldfinch.model.GoldFinchException;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

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
            BenchCommand.class,
            CommandLine.HelpCommand.class
        })
public final class GoldfinchCli {
    /** Exit code for bad input or a bad model file (as opposed to an internal failure, 1). */
    static final int EXIT_BAD_INPUT = 2;

    private GoldfinchCli() {}

    public static void main(String[] args) {
        System.exit(run(args));
    }

    static int run(String... args) {
        CommandLine cli = new CommandLine(new GoldfinchCli());
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            PrintWriter err = cmd.getErr();
            if (e instanceof GoldFinchException) {
                err.println("error: " + e.getMessage());
                err.flush();
                return EXIT_BAD_INPUT;
            }
            err.println("internal error: " + e);
            e.printStackTrace(err);
            err.flush();
            return 1;
        });
        return cli.execute(args);
    }
}
