-- A study made by hpsearch before its study record was one module (commit edf358f, Optuna 5.0): 3 trials of
-- tests/tiny_space.py, 2 epochs each, on conftest.write_tiny_images(), --keep 2. Its artifact files are not kept.
-- tests/test_record.py reads it as today's code does.
BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('v3.2.0.a');
CREATE TABLE studies (
	study_id INTEGER NOT NULL, 
	study_name VARCHAR(512) NOT NULL, 
	PRIMARY KEY (study_id)
);
INSERT INTO "studies" VALUES(1,'tiny');
CREATE TABLE study_directions (
	study_direction_id INTEGER NOT NULL, 
	direction VARCHAR(8) NOT NULL, 
	study_id INTEGER NOT NULL, 
	objective INTEGER NOT NULL, 
	PRIMARY KEY (study_direction_id), 
	UNIQUE (study_id, objective), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
INSERT INTO "study_directions" VALUES(1,'MAXIMIZE',1,0);
CREATE TABLE study_system_attributes (
	study_system_attribute_id INTEGER NOT NULL, 
	study_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (study_system_attribute_id), 
	UNIQUE (study_id, "key"), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
INSERT INTO "study_system_attributes" VALUES(1,1,'artifacts:07797bd0-84fd-472d-841a-42e4c62b7f44','"{\"artifact_id\": \"07797bd0-84fd-472d-841a-42e4c62b7f44\", \"filename\": \"splits.csv\", \"mimetype\": \"text/csv\", \"encoding\": null}"');
INSERT INTO "study_system_attributes" VALUES(2,1,'dashboard:note_ver','1');
INSERT INTO "study_system_attributes" VALUES(3,1,'dashboard:note_str:0','"## tiny: tests\n\n### Search space\n\n| parameter | searched over |\n| --- | --- |\n| model | baseline |\n| batch_size | 4 \\| 8 |\n| lr | 0.001 .. 0.01 (log) |\n| weight_decay | 1e-06 .. 0.0001 (log) |\n\nTask classify; 16 px images (stretch); 2 epoch(s) per trial; maximizes valid f1_weighted.\n\n### Data\n\n36 images from `/tmp/oldrun/images` (36 files), fingerprint `33014a09d8aa5577`, split digest `82b34c553e844897`.\n\n| class | train | valid | test |\n| --- | ---: | ---: | ---: |\n| circle | 7 | 2 | 3 |\n| square | 7 | 2 | 3 |\n| stripe | 7 | 3 | 2 |\n\n### Run it again\n\n```\nhpsearch run --space /tmp/old/tests/tiny_space.py --trials 3 --data images --epochs 2 --keep 2 --seed 0 --storage sqlite:///studies.db --study tiny\n```"');
INSERT INTO "study_system_attributes" VALUES(4,1,'dashboard:1:note_ver','1');
INSERT INTO "study_system_attributes" VALUES(5,1,'dashboard:1:note_str:0','"## Trial 0: complete, valid f1_weighted 1.0000 at epoch 1\n\n| epoch | train loss | valid loss | valid accuracy | valid f1 weighted |\n| ---: | ---: | ---: | ---: | ---: |\n| 1 (best) | 0.6468 | 0.9059 | 1.0000 | 1.0000 |\n| 2 | 0.2873 | 0.2985 | 1.0000 | 1.0000 |\n\n**Parameters**\n\n- model: `baseline`\n- batch_size: `4`\n- lr: `0.002592`\n- weight_decay: `8.308e-06`\n\n**Model**: 238,793 parameters, 238,793 trainable  \n**Time**: 0.9 s on cpu"');
INSERT INTO "study_system_attributes" VALUES(6,1,'dashboard:2:note_ver','1');
INSERT INTO "study_system_attributes" VALUES(7,1,'dashboard:2:note_str:0','"## Trial 1: complete, valid f1_weighted 1.0000 at epoch 2\n\n| epoch | train loss | valid loss | valid accuracy | valid f1 weighted |\n| ---: | ---: | ---: | ---: | ---: |\n| 1 | 0.8310 | 0.9291 | 0.4286 | 0.3214 |\n| 2 (best) | 0.6241 | 0.5544 | 1.0000 | 1.0000 |\n\n**Parameters**\n\n- model: `baseline`\n- batch_size: `4`\n- lr: `0.002063`\n- weight_decay: `3.159e-06`\n\n**Model**: 238,793 parameters, 238,793 trainable  \n**Time**: 0.8 s on cpu"');
INSERT INTO "study_system_attributes" VALUES(8,1,'dashboard:3:note_ver','1');
INSERT INTO "study_system_attributes" VALUES(9,1,'dashboard:3:note_str:0','"## Trial 2: complete, valid f1_weighted 0.6190 at epoch 1\n\n| epoch | train loss | valid loss | valid accuracy | valid f1 weighted |\n| ---: | ---: | ---: | ---: | ---: |\n| 1 (best) | 0.7802 | 0.5566 | 0.7143 | 0.6190 |\n| 2 | 0.1242 | 0.5599 | 0.7143 | 0.6190 |\n\n**Parameters**\n\n- model: `baseline`\n- batch_size: `8`\n- lr: `0.007207`\n- weight_decay: `5.021e-05`\n\n**Model**: 238,793 parameters, 238,793 trainable  \n**Time**: 0.6 s on cpu"');
CREATE TABLE study_user_attributes (
	study_user_attribute_id INTEGER NOT NULL, 
	study_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (study_user_attribute_id), 
	UNIQUE (study_id, "key"), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
INSERT INTO "study_user_attributes" VALUES(1,1,'search','{"sampler": "tpe", "pruner": "patient"}');
INSERT INTO "study_user_attributes" VALUES(2,1,'epochs','2');
INSERT INTO "study_user_attributes" VALUES(3,1,'space','"tiny"');
INSERT INTO "study_user_attributes" VALUES(4,1,'data','{"source": "/tmp/oldrun/images", "fingerprint": "33014a09d8aa5577", "split_digest": "82b34c553e844897", "files": 36, "images": 36, "class_names": ["circle", "square", "stripe"], "counts": {"train": {"circle": 7, "square": 7, "stripe": 7}, "valid": {"circle": 2, "square": 2, "stripe": 3}, "test": {"circle": 3, "square": 3, "stripe": 2}}, "skipped": 0, "image_size": 16, "resize": "stretch", "crop": null, "split": [0.6, 0.2, 0.2], "seed": 0}');
INSERT INTO "study_user_attributes" VALUES(5,1,'splits_artifact','"07797bd0-84fd-472d-841a-42e4c62b7f44"');
INSERT INTO "study_user_attributes" VALUES(6,1,'storage','"sqlite:///studies.db"');
INSERT INTO "study_user_attributes" VALUES(7,1,'trials_wanted','3');
INSERT INTO "study_user_attributes" VALUES(8,1,'heartbeat','30');
INSERT INTO "study_user_attributes" VALUES(9,1,'keep','2');
INSERT INTO "study_user_attributes" VALUES(10,1,'best_evaluation','{"trial": 0, "params": {"model": "baseline", "batch_size": 4, "lr": 0.0025918462944881497, "weight_decay": 8.308047269582548e-06}, "table": {"train": {"loss": 0.9224985837936401, "accuracy": 1.0, "f1_weighted": 1.0}, "valid": {"loss": 0.905860424041748, "accuracy": 1.0, "f1_weighted": 1.0}, "test": {"loss": 0.9367919564247131, "accuracy": 1.0, "f1_weighted": 1.0}}}');
CREATE TABLE trial_heartbeats (
	trial_heartbeat_id INTEGER NOT NULL, 
	trial_id INTEGER NOT NULL, 
	heartbeat DATETIME NOT NULL, 
	PRIMARY KEY (trial_heartbeat_id), 
	UNIQUE (trial_id), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO "trial_heartbeats" VALUES(1,1,'2026-11-30 16:33:07');
INSERT INTO "trial_heartbeats" VALUES(2,2,'2026-11-30 16:33:08');
INSERT INTO "trial_heartbeats" VALUES(3,3,'2026-11-30 16:33:09');
CREATE TABLE trial_intermediate_values (
	trial_intermediate_value_id INTEGER NOT NULL, 
	trial_id INTEGER NOT NULL, 
	step INTEGER NOT NULL, 
	intermediate_value FLOAT, 
	intermediate_value_type VARCHAR(7) NOT NULL, 
	PRIMARY KEY (trial_intermediate_value_id), 
	UNIQUE (trial_id, step), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO "trial_intermediate_values" VALUES(1,1,1,1.0,'FINITE');
INSERT INTO "trial_intermediate_values" VALUES(2,1,2,1.0,'FINITE');
INSERT INTO "trial_intermediate_values" VALUES(3,2,1,3.21428571428571452361e-01,'FINITE');
INSERT INTO "trial_intermediate_values" VALUES(4,2,2,1.0,'FINITE');
INSERT INTO "trial_intermediate_values" VALUES(5,3,1,0.619047619047619,'FINITE');
INSERT INTO "trial_intermediate_values" VALUES(6,3,2,0.619047619047619,'FINITE');
CREATE TABLE trial_params (
	param_id INTEGER NOT NULL, 
	trial_id INTEGER, 
	param_name VARCHAR(512), 
	param_value FLOAT, 
	distribution_json TEXT, 
	PRIMARY KEY (param_id), 
	UNIQUE (trial_id, param_name), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO "trial_params" VALUES(1,1,'model',0.0,'{"name": "CategoricalDistribution", "attributes": {"choices": ["baseline"]}}');
INSERT INTO "trial_params" VALUES(2,1,'batch_size',0.0,'{"name": "CategoricalDistribution", "attributes": {"choices": [4, 8]}}');
INSERT INTO "trial_params" VALUES(3,1,'lr',2.59184629448814965804e-03,'{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.001, "high": 0.01, "log": true}}');
INSERT INTO "trial_params" VALUES(4,1,'weight_decay',8.30804726958254792599e-06,'{"name": "FloatDistribution", "attributes": {"step": null, "low": 1e-06, "high": 0.0001, "log": true}}');
INSERT INTO "trial_params" VALUES(5,2,'model',0.0,'{"name": "CategoricalDistribution", "attributes": {"choices": ["baseline"]}}');
INSERT INTO "trial_params" VALUES(6,2,'batch_size',0.0,'{"name": "CategoricalDistribution", "attributes": {"choices": [4, 8]}}');
INSERT INTO "trial_params" VALUES(7,2,'lr',2.06270700440182265175e-03,'{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.001, "high": 0.01, "log": true}}');
INSERT INTO "trial_params" VALUES(8,2,'weight_decay',3.15878375033594794825e-06,'{"name": "FloatDistribution", "attributes": {"step": null, "low": 1e-06, "high": 0.0001, "log": true}}');
INSERT INTO "trial_params" VALUES(9,3,'model',0.0,'{"name": "CategoricalDistribution", "attributes": {"choices": ["baseline"]}}');
INSERT INTO "trial_params" VALUES(10,3,'batch_size',1.0,'{"name": "CategoricalDistribution", "attributes": {"choices": [4, 8]}}');
INSERT INTO "trial_params" VALUES(11,3,'lr',7.206854870904518158e-03,'{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.001, "high": 0.01, "log": true}}');
INSERT INTO "trial_params" VALUES(12,3,'weight_decay',5.02115021639792198301e-05,'{"name": "FloatDistribution", "attributes": {"step": null, "low": 1e-06, "high": 0.0001, "log": true}}');
CREATE TABLE trial_system_attributes (
	trial_system_attribute_id INTEGER NOT NULL, 
	trial_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (trial_system_attribute_id), 
	UNIQUE (trial_id, "key"), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO "trial_system_attributes" VALUES(1,1,'sampler_seed','2968811710');
INSERT INTO "trial_system_attributes" VALUES(2,1,'artifacts:1dc26bfd-bf8a-420c-9400-e999638bd081','"{\"artifact_id\": \"1dc26bfd-bf8a-420c-9400-e999638bd081\", \"filename\": \"model.safetensors\", \"mimetype\": \"application/octet-stream\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(3,1,'artifacts:1986f5da-ea7f-4261-88c7-1a83db849061','"{\"artifact_id\": \"1986f5da-ea7f-4261-88c7-1a83db849061\", \"filename\": \"model.json\", \"mimetype\": \"application/json\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(4,1,'artifacts:a8e54022-d2ad-4745-b26c-54362505509b','"{\"artifact_id\": \"a8e54022-d2ad-4745-b26c-54362505509b\", \"filename\": \"learning_curves.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(5,1,'artifacts:75d849cd-0d3d-47f9-b83a-9413a7425588','"{\"artifact_id\": \"75d849cd-0d3d-47f9-b83a-9413a7425588\", \"filename\": \"confusion_valid.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(6,1,'artifacts:cdcb9136-2d60-48ae-99a4-4c0e33598720','"{\"artifact_id\": \"cdcb9136-2d60-48ae-99a4-4c0e33598720\", \"filename\": \"confusion_test.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(7,1,'artifacts:7540c9e7-4a95-4eee-826c-bc57c76198df','"{\"artifact_id\": \"7540c9e7-4a95-4eee-826c-bc57c76198df\", \"filename\": \"examples_test.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(8,2,'sampler_seed','3964924996');
INSERT INTO "trial_system_attributes" VALUES(9,2,'artifacts:cc373688-87e9-4fe9-bcf1-68bd3cb93d87','"{\"artifact_id\": \"cc373688-87e9-4fe9-bcf1-68bd3cb93d87\", \"filename\": \"model.safetensors\", \"mimetype\": \"application/octet-stream\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(10,2,'artifacts:dfea0cdb-1759-4722-a7c7-a3f4b47aff23','"{\"artifact_id\": \"dfea0cdb-1759-4722-a7c7-a3f4b47aff23\", \"filename\": \"model.json\", \"mimetype\": \"application/json\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(11,2,'artifacts:03ef4715-7bf7-4649-a30f-d95d6d9b88a4','"{\"artifact_id\": \"03ef4715-7bf7-4649-a30f-d95d6d9b88a4\", \"filename\": \"learning_curves.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(12,2,'artifacts:83e41527-6744-4562-8879-153a0df733c1','"{\"artifact_id\": \"83e41527-6744-4562-8879-153a0df733c1\", \"filename\": \"confusion_valid.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(13,2,'artifacts:4d3cb0c0-d0fb-4ffa-a8e5-29368f95f500','"{\"artifact_id\": \"4d3cb0c0-d0fb-4ffa-a8e5-29368f95f500\", \"filename\": \"confusion_test.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(14,2,'artifacts:cde943cb-ceba-4e90-bfac-6b6aad592639','"{\"artifact_id\": \"cde943cb-ceba-4e90-bfac-6b6aad592639\", \"filename\": \"examples_test.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(15,3,'sampler_seed','3141116543');
INSERT INTO "trial_system_attributes" VALUES(16,3,'artifacts:6d65dab6-3967-47cc-914d-caa7d1e8010e','"{\"artifact_id\": \"6d65dab6-3967-47cc-914d-caa7d1e8010e\", \"filename\": \"learning_curves.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(17,3,'artifacts:910dcdfa-c3b0-4827-8cdb-4182c63af995','"{\"artifact_id\": \"910dcdfa-c3b0-4827-8cdb-4182c63af995\", \"filename\": \"confusion_valid.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
CREATE TABLE trial_user_attributes (
	trial_user_attribute_id INTEGER NOT NULL, 
	trial_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (trial_user_attribute_id), 
	UNIQUE (trial_id, "key"), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO "trial_user_attributes" VALUES(1,1,'worker','"vm:7373"');
INSERT INTO "trial_user_attributes" VALUES(2,1,'device','"cpu"');
INSERT INTO "trial_user_attributes" VALUES(3,1,'epochs','[{"train_loss": 0.6467924118041992, "valid_loss": 0.905860424041748, "valid_accuracy": 1.0, "valid_f1_weighted": 1.0}, {"train_loss": 0.2873266339302063, "valid_loss": 0.2984863221645355, "valid_accuracy": 1.0, "valid_f1_weighted": 1.0}]');
INSERT INTO "trial_user_attributes" VALUES(4,1,'trainable_params','238793');
INSERT INTO "trial_user_attributes" VALUES(5,1,'total_params','238793');
INSERT INTO "trial_user_attributes" VALUES(6,1,'best_epoch','1');
INSERT INTO "trial_user_attributes" VALUES(7,1,'inference_ms_per_image','1.0656');
INSERT INTO "trial_user_attributes" VALUES(8,1,'chance_level','0.127');
INSERT INTO "trial_user_attributes" VALUES(9,1,'no_better_than_chance','false');
INSERT INTO "trial_user_attributes" VALUES(10,1,'weights_artifact','"1dc26bfd-bf8a-420c-9400-e999638bd081"');
INSERT INTO "trial_user_attributes" VALUES(11,1,'model_artifact','"1986f5da-ea7f-4261-88c7-1a83db849061"');
INSERT INTO "trial_user_attributes" VALUES(12,1,'epochs_run','2');
INSERT INTO "trial_user_attributes" VALUES(13,1,'seconds','0.87');
INSERT INTO "trial_user_attributes" VALUES(14,2,'worker','"vm:7373"');
INSERT INTO "trial_user_attributes" VALUES(15,2,'device','"cpu"');
INSERT INTO "trial_user_attributes" VALUES(16,2,'epochs','[{"train_loss": 0.831008791923523, "valid_loss": 0.9291083216667175, "valid_accuracy": 0.42857142857142855, "valid_f1_weighted": 0.32142857142857145}, {"train_loss": 0.6241142153739929, "valid_loss": 0.5543609261512756, "valid_accuracy": 1.0, "valid_f1_weighted": 1.0}]');
INSERT INTO "trial_user_attributes" VALUES(17,2,'trainable_params','238793');
INSERT INTO "trial_user_attributes" VALUES(18,2,'total_params','238793');
INSERT INTO "trial_user_attributes" VALUES(19,2,'best_epoch','2');
INSERT INTO "trial_user_attributes" VALUES(20,2,'inference_ms_per_image','0.5808');
INSERT INTO "trial_user_attributes" VALUES(21,2,'chance_level','0.127');
INSERT INTO "trial_user_attributes" VALUES(22,2,'no_better_than_chance','false');
INSERT INTO "trial_user_attributes" VALUES(23,2,'weights_artifact','"cc373688-87e9-4fe9-bcf1-68bd3cb93d87"');
INSERT INTO "trial_user_attributes" VALUES(24,2,'model_artifact','"dfea0cdb-1759-4722-a7c7-a3f4b47aff23"');
INSERT INTO "trial_user_attributes" VALUES(25,2,'epochs_run','2');
INSERT INTO "trial_user_attributes" VALUES(26,2,'seconds','0.85');
INSERT INTO "trial_user_attributes" VALUES(27,3,'worker','"vm:7373"');
INSERT INTO "trial_user_attributes" VALUES(28,3,'device','"cpu"');
INSERT INTO "trial_user_attributes" VALUES(29,3,'epochs','[{"train_loss": 0.7801674604415894, "valid_loss": 0.5565813183784485, "valid_accuracy": 0.7142857142857143, "valid_f1_weighted": 0.619047619047619}, {"train_loss": 0.12415526807308197, "valid_loss": 0.5599141716957092, "valid_accuracy": 0.7142857142857143, "valid_f1_weighted": 0.619047619047619}]');
INSERT INTO "trial_user_attributes" VALUES(30,3,'trainable_params','238793');
INSERT INTO "trial_user_attributes" VALUES(31,3,'total_params','238793');
INSERT INTO "trial_user_attributes" VALUES(32,3,'best_epoch','1');
INSERT INTO "trial_user_attributes" VALUES(33,3,'inference_ms_per_image','0.573');
INSERT INTO "trial_user_attributes" VALUES(34,3,'chance_level','0.127');
INSERT INTO "trial_user_attributes" VALUES(35,3,'no_better_than_chance','false');
INSERT INTO "trial_user_attributes" VALUES(36,3,'epochs_run','2');
INSERT INTO "trial_user_attributes" VALUES(37,3,'seconds','0.61');
CREATE TABLE trial_values (
	trial_value_id INTEGER NOT NULL, 
	trial_id INTEGER NOT NULL, 
	objective INTEGER NOT NULL, 
	value FLOAT, 
	value_type VARCHAR(7) NOT NULL, 
	PRIMARY KEY (trial_value_id), 
	UNIQUE (trial_id, objective), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO "trial_values" VALUES(1,1,0,1.0,'FINITE');
INSERT INTO "trial_values" VALUES(2,2,0,1.0,'FINITE');
INSERT INTO "trial_values" VALUES(3,3,0,0.619047619047619,'FINITE');
CREATE TABLE trials (
	trial_id INTEGER NOT NULL, 
	number INTEGER, 
	study_id INTEGER, 
	state VARCHAR(8) NOT NULL, 
	datetime_start DATETIME, 
	datetime_complete DATETIME, 
	PRIMARY KEY (trial_id), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
INSERT INTO "trials" VALUES(1,0,1,'COMPLETE','2026-11-30 16:33:07.588227','2026-11-30 16:33:08.634022');
INSERT INTO "trials" VALUES(2,1,1,'COMPLETE','2026-11-30 16:33:08.672114','2026-11-30 16:33:09.576798');
INSERT INTO "trials" VALUES(3,2,1,'COMPLETE','2026-11-30 16:33:09.605820','2026-11-30 16:33:10.274921');
CREATE TABLE version_info (
	version_info_id INTEGER NOT NULL, 
	schema_version INTEGER, 
	library_version VARCHAR(256), 
	PRIMARY KEY (version_info_id), 
	CHECK (version_info_id=1)
);
INSERT INTO "version_info" VALUES(1,12,'5.0.0');
CREATE UNIQUE INDEX ix_studies_study_name ON studies (study_name);
CREATE INDEX ix_trials_study_id ON trials (study_id);
COMMIT;
