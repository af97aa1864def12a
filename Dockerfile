# The runtime's image: Ray 2.60 (Python 3.11, CPU) with the project installed. The KubeRay RayService
# (deploy/kuberay/rayservice.yaml) names it; `docker build -t ghcr.io/cidadao-ai/runtime:0.1.0 .` builds it
# where a container engine runs. Postgres and Redis are external (CIDADAO_DATABASE_URL, CIDADAO_REDIS_URL).
FROM rayproject/ray:2.60.0-py311-cpu

WORKDIR /home/ray/cidadao
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users cidadao ./cidadao
COPY --chown=ray:users actors ./actors
COPY --chown=ray:users deployments ./deployments
COPY --chown=ray:users pipelines ./pipelines
COPY --chown=ray:users bench ./bench
RUN pip install --no-cache-dir .

# inside a pod or container the API must be reachable from outside the container's loopback
ENV CIDADAO_HOST=0.0.0.0 \
    CIDADAO_DATA_HOME=/home/ray/.cidadao
EXPOSE 8000 8265 6379 10001
CMD ["cidadao", "up"]
