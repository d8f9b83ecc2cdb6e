# One image for every GoldFinch service; docker-compose.yml picks the service by its main class.
# Build: docker build -t goldfinch-mesh .
FROM eclipse-temurin:25-jdk AS build
WORKDIR /src
COPY . .
RUN ./mvnw -B -q -DskipTests -pl cli -am install

FROM eclipse-temurin:25-jre
WORKDIR /app
COPY --from=build /src/cli/target/goldfinch-cli.jar /app/goldfinch-cli.jar
COPY --from=build /src/cli/target/lib /app/lib
ENTRYPOINT ["java", "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-Xss4m", "-cp", "/app/goldfinch-cli.jar:/app/lib/*"]
CMD ["dev.goldfinch.cli.GoldfinchCli", "--help"]
