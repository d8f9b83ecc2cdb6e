package dev.goldfinch.cli;

import java.io.PrintStream;

/** A one-line progress bar on stderr, redrawn at most once per percent. */
final class ProgressBar {
    private static final int WIDTH = 40;
    private final String label;
    private final PrintStream out = System.err;
    private int lastPercent = -1;

    ProgressBar(String label) {
        this.label = label;
    }

    void update(long done, long total) {
        int percent = total <= 0 ? 100 : (int) (done * 100 / total);
        if (percent == lastPercent) {
            return;
        }
        lastPercent = percent;
        int filled = percent * WIDTH / 100;
        out.print("\r" + label + " [" + "#".repeat(filled) + " ".repeat(WIDTH - filled) + "] " + percent + "% "
                + (done >> 20) + "/" + (total >> 20) + " MiB");
        out.flush();
    }

    void done() {
        if (lastPercent >= 0) {
            out.println();
        }
    }
}
