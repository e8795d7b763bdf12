-- Run once by the postgres image when its data volume is new (docker-entrypoint-initdb.d):
-- the study lives in the database `hpo` (POSTGRES_DB), MLflow's runs in `mlflow`.
CREATE DATABASE mlflow;
