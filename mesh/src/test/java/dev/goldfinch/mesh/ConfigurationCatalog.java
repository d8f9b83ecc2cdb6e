package dev.goldfinch.mesh;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.RecordComponent;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.springframework.beans.factory.config.BeanDefinition;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.Name;
import org.springframework.context.annotation.ClassPathScanningCandidateComponentProvider;
import org.springframework.core.type.filter.AnnotationTypeFilter;
import org.springframework.util.unit.DataSize;

/**
 * Every {@code goldfinch.*} property the services bind, with its default: the {@code @ConfigurationProperties}
 * records found on the class path, each built with all-null arguments (their compact constructors apply the
 * defaults) and flattened the way Spring binds them (kebab-case names, nested records as sub-prefixes).
 */
final class ConfigurationCatalog {
    private ConfigurationCatalog() {}

    /** Every {@code @ConfigurationProperties} class under {@code dev.goldfinch} on the class path. */
    static List<Class<?>> propertiesClasses() {
        var scanner = new ClassPathScanningCandidateComponentProvider(false);
        scanner.addIncludeFilter(new AnnotationTypeFilter(ConfigurationProperties.class));
        List<Class<?>> classes = new ArrayList<>();
        for (BeanDefinition d : scanner.findCandidateComponents("dev.goldfinch")) {
            try {
                classes.add(Class.forName(d.getBeanClassName()));
            } catch (ClassNotFoundException e) {
                throw new IllegalStateException(e);
            }
        }
        classes.sort(Comparator.comparing(Class::getName));
        return classes;
    }

    /**
     * The classes the sources declare {@code @ConfigurationProperties} on (main code of every module), so a
     * module missing from this class path shows up as a difference rather than as silently unchecked.
     */
    static Collection<String> declaredInSources(Path projectRoot) {
        try (Stream<Path> files = Files.walk(projectRoot)) {
            return files.filter(p -> p.toString().endsWith(".java"))
                    .filter(p -> p.toString().contains("/src/main/java/"))
                    .filter(p -> !p.toString().contains("/target/"))
                    .filter(ConfigurationCatalog::declaresProperties)
                    .map(p -> {
                        String s = p.toString();
                        return s.substring(s.indexOf("/src/main/java/") + "/src/main/java/".length(), s.length() - 5)
                                .replace('/', '.');
                    })
                    .collect(Collectors.toCollection(TreeSet::new));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static boolean declaresProperties(Path source) {
        try {
            return Files.readString(source).contains("\n@ConfigurationProperties(");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Property name → default value (null: none), over every class; a name two classes disagree on fails. */
    static Map<String, Object> defaults() {
        Map<String, Object> all = new TreeMap<>();
        for (Class<?> c : propertiesClasses()) {
            String prefix = c.getAnnotation(ConfigurationProperties.class).value();
            Map<String, Object> own = new TreeMap<>();
            flatten(prefix, c, own);
            for (var e : own.entrySet()) {
                if (all.containsKey(e.getKey()) && !Objects.equals(all.get(e.getKey()), e.getValue())) {
                    throw new IllegalStateException(e.getKey() + " has two defaults: " + all.get(e.getKey()) + " and "
                            + e.getValue() + " (" + c.getSimpleName() + ")");
                }
                all.put(e.getKey(), e.getValue());
            }
        }
        return all;
    }

    private static void flatten(String prefix, Class<?> type, Map<String, Object> out) {
        Object defaults = instantiateWithNulls(type);
        RecordComponent[] components = type.getRecordComponents();
        Constructor<?> canonical = canonical(type);
        for (int i = 0; i < components.length; i++) {
            RecordComponent rc = components[i];
            Name renamed = canonical.getParameters()[i].getAnnotation(Name.class);
            String name = prefix + "." + (renamed != null ? renamed.value() : kebab(rc.getName()));
            if (rc.getType().isRecord()) {
                flatten(name, rc.getType(), out);
            } else {
                try {
                    out.put(name, rc.getAccessor().invoke(defaults));
                } catch (ReflectiveOperationException e) {
                    throw new IllegalStateException(e);
                }
            }
        }
    }

    private static Constructor<?> canonical(Class<?> record) {
        Class<?>[] types = Stream.of(record.getRecordComponents())
                .map(RecordComponent::getType)
                .toArray(Class<?>[]::new);
        try {
            return record.getDeclaredConstructor(types);
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException(record + " has no canonical constructor", e);
        }
    }

    private static Object instantiateWithNulls(Class<?> type) {
        if (!type.isRecord()) {
            throw new IllegalStateException(type + ": configuration classes are records (defaults in the constructor)");
        }
        Constructor<?> canonical = canonical(type);
        for (Class<?> p : canonical.getParameterTypes()) {
            if (p.isPrimitive()) {
                throw new IllegalStateException(type + ": a primitive component has no 'unset'; use its box");
            }
        }
        try {
            return canonical.newInstance(new Object[canonical.getParameterCount()]);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(type + " cannot be built with every property unset", e);
        }
    }

    /** maxPromptTokens → max-prompt-tokens, as Spring's canonical property names have it. */
    static String kebab(String camel) {
        return camel.replaceAll("([a-z0-9])([A-Z])", "$1-$2").toLowerCase(Locale.ROOT);
    }

    /** Spring's relaxed binding from the environment: goldfinch.model.max-prompt-tokens ← GOLDFINCH_MODEL_MAXPROMPTTOKENS. */
    static String environmentVariable(String property) {
        return property.replace('.', '_').replace("-", "").toUpperCase(Locale.ROOT);
    }

    /** A default as configuration would spell it: 10m, 8MB, internal, a,b; "—" for none. */
    static String format(Object value) {
        return switch (value) {
            case null -> "—";
            case Duration d -> formatDuration(d);
            case DataSize s -> formatDataSize(s);
            case Enum<?> e -> e.name().toLowerCase(Locale.ROOT);
            case List<?> l when l.isEmpty() -> "—";
            case List<?> l -> l.stream().map(String::valueOf).collect(Collectors.joining(","));
            case Map<?, ?> m when m.isEmpty() -> "—";
            default -> String.valueOf(value);
        };
    }

    private static String formatDuration(Duration d) {
        long ms = d.toMillis();
        if (ms % 86_400_000 == 0) {
            return ms / 86_400_000 + "d";
        } else if (ms % 3_600_000 == 0) {
            return ms / 3_600_000 + "h";
        } else if (ms % 60_000 == 0) {
            return ms / 60_000 + "m";
        } else if (ms % 1_000 == 0) {
            return ms / 1_000 + "s";
        }
        return ms + "ms";
    }

    private static String formatDataSize(DataSize s) {
        long b = s.toBytes();
        if (b % (1L << 30) == 0) {
            return b / (1L << 30) + "GB";
        } else if (b % (1L << 20) == 0) {
            return b / (1L << 20) + "MB";
        } else if (b % 1024 == 0) {
            return b / 1024 + "KB";
        }
        return b + "B";
    }
}
