from emofuse.models.encoders import ENCODERS
from emofuse.models.fusion import FUSIONS
from emofuse.models.multimodal import ModelOutput, MultimodalClassifier, create_model

__all__ = ["ENCODERS", "FUSIONS", "ModelOutput", "MultimodalClassifier", "create_model"]
