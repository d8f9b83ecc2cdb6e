# One image for every GoldFinch service: the mesh assembly (mesh/), the services' jars and their runtime
# libraries only (no command line, no plotting). docker-compose.yml picks the service by its main class.
# Build: docker build -t goldfinch-mesh .
FROM eclipse-temurin:25-jdk AS build
WORKDIR /src
COPY . .
RUN ./mvnw -B -q -DskipTests -pl mesh -am package

FROM eclipse-temurin:25-jre
# The services run as an unprivileged user that owns nothing of the image (the jars are root's, read-only).
RUN groupadd --system --gid 10001 goldfinch && useradd --system --uid 10001 --gid goldfinch --no-create-home goldfinch
WORKDIR /app
COPY --from=build /src/mesh/target/goldfinch-mesh.jar /app/goldfinch-mesh.jar
COPY --from=build /src/mesh/target/lib /app/lib
USER 10001:10001
ENTRYPOINT ["java", "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-Xss4m", "-cp", "/app/goldfinch-mesh.jar:/app/lib/*"]
# The service to run, e.g. dev.goldfinch.prefill.PrefillApplication (see docker-compose.yml).
CMD ["dev.goldfinch.gateway.GatewayApplication"]
